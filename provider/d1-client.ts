import { z } from "zod";
import { ApiClientOptions, CloudflareApi } from "./http";

/** One statement of a D1 batch: SQL with `?` placeholders and its bound values. */
export interface D1Statement { sql: string; params: (string | number | null)[] }

export interface D1StatementResult { results: Record<string, unknown>[]; success: boolean; meta: Record<string, unknown> }

const ResultSchema = z.array(z.object({
    results: z.array(z.record(z.string(), z.unknown())).nullish().transform((r) => r ?? []),
    success: z.boolean(),
    meta: z.record(z.string(), z.unknown()).nullish().transform((m) => m ?? {}),
}));

export interface D1ClientOptions extends ApiClientOptions { accountId: string; databaseId: string }

/**
 * The D1 HTTP API (`POST /accounts/{id}/d1/database/{db}/query`) over the shared CloudflareApi (retries, limiter,
 * redaction). A batch runs as one transaction; SQL errors surface as CloudflareApiError with code 7500.
 */
export class D1Client {
    private readonly api: CloudflareApi;
    private readonly path: string;

    constructor(opts: D1ClientOptions) {
        this.api = new CloudflareApi(opts);
        this.path = `/accounts/${encodeURIComponent(opts.accountId)}/d1/database/${encodeURIComponent(opts.databaseId)}/query`;
    }

    /** Runs the statements as one batch; one result per statement, in order. */
    async query(statements: D1Statement[]): Promise<D1StatementResult[]> {
        if (statements.length === 0) return [];
        // Every statement this project sends is idempotent (upserts, owner-checked deletes), so retries are safe.
        return this.api.request({ method: "POST", path: this.path, json: { batch: statements }, schema: ResultSchema });
    }
}
