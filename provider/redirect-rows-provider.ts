import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { normalisePathname } from "./redirect/paths";
import { batches, deleteStatements, diffRows, MAX_ROWS_PER_SHARD, Rows, Statement, upsertStatements } from "./redirect/rows";
import { schemaStatements } from "./redirect/schema";
import { D1Client } from "./d1-client";
import { CloudflareApiError, redact } from "./errors";
import { canonical } from "./image-diff";
import { UNKNOWN } from "./image-inputs";
import { ConfigSource, ProviderSettings, readProviderSettings, withTokenFallback } from "./provider-config";


// Module state lives in the host process for one deployment (the shim requires this module once per process).
let settings: ProviderSettings = { aws: {} };

export interface RowsInputs {
    accountId: string;
    databaseId: string;
    shard: string;
    rows: Rows;
    apiToken?: string;
    apiBaseUrl?: string;
    /** Digest of schema.sql when the program ran (provider/redirect/schema.ts); absent in states before it existed. */
    schemaVersion?: string;
}

export interface RowsOutputs extends RowsInputs { rowCount: number }

/** True when `key` is a normalised path (`/a/b.jpg`) or a normalised `host/path` key. */
export function isNormalisedKey(key: string): boolean {
    const hosted = /^([a-z0-9-]+(?:\.[a-z0-9-]+)*(?::\d+)?)(\/.*)$/.exec(key);
    const path = key.startsWith("/") ? key : hosted?.[2];
    return path !== undefined && normalisePathname(path) === path;
}

const text = (name: string, fix: string) =>
    z.string({ error: `${name} must be a string: ${fix}` }).min(1, { error: `${name} is empty: ${fix}` });

const InputsSchema = z.object({
    accountId: text("accountId", "set it to your Cloudflare account ID (sourcing-kit:accountId)"),
    databaseId: text("databaseId", "pass the D1 database UUID (cloudflare.D1Database.uuid)"),
    shard: text("shard", "name the shard (RedirectLayer derives it)").max(200, { error: "shard is longer than 200 characters: use a shorter name" }),
    rows: z.record(z.string(), z.string({ error: "rows values must be delivery URL strings" }), {
        error: "rows must be an object of normalised path -> delivery URL",
    }).superRefine((rows, ctx) => {
        const keys = Object.keys(rows);
        if (keys.length > MAX_ROWS_PER_SHARD) {
            ctx.addIssue({ code: "custom", message: `rows has ${keys.length} entries, over ${MAX_ROWS_PER_SHARD} per shard: split them (RedirectLayer shards automatically)` });
        }
        for (const key of keys) {
            if (!isNormalisedKey(key)) {
                ctx.addIssue({ code: "custom", message: `rows key "${key}" is not a normalised path: write it through redirectKey() (provider/redirect/paths.ts)` });
            }
            const value = rows[key];
            if (value !== UNKNOWN && !/^https?:\/\/[^/]/.test(value)) {
                ctx.addIssue({ code: "custom", message: `rows["${key}"] = "${value}" is not an absolute http(s) delivery URL` });
            }
        }
    }),
    apiToken: z.string().min(1, { error: "apiToken is empty: pass a token or leave it unset to use cloudflare:apiToken" }).optional(),
    apiBaseUrl: z.string().url({ error: "apiBaseUrl must be an absolute URL such as https://api.cloudflare.com/client/v4" }).optional(),
    schemaVersion: z.string().min(1, { error: "schemaVersion is empty: leave it to RedirectRows (a digest of schema.sql)" }).optional(),
});

/** Check: zod failures as CheckFailures naming the property; unknown values (preview) are not judged. No network. */
export function checkRowsInputs(news: Record<string, unknown>): pulumi.dynamic.CheckFailure[] {
    const known = Object.fromEntries(Object.entries(news).filter(([k, v]) => k !== "__provider" && v !== UNKNOWN && v !== undefined));
    const shape = InputsSchema.partial({ ...(news.rows === UNKNOWN ? { rows: true } : {}),
        ...(news.databaseId === UNKNOWN ? { databaseId: true } : {}), ...(news.accountId === UNKNOWN ? { accountId: true } : {}) });
    const parsed = shape.safeParse(known);
    if (parsed.success) return [];
    return parsed.error.issues.map((issue) => ({ property: String(issue.path[0] ?? "rows"), reason: issue.message }));
}

function parseInputs(props: Record<string, unknown>): RowsInputs {
    const parsed = InputsSchema.safeParse(Object.fromEntries(Object.entries(props).filter(([k]) => k !== "__provider" && k !== "rowCount")));
    if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${String(i.path[0] ?? "")}: ${i.message}`).join("; "));
    return parsed.data;
}

/**
 * Diff, pure: a new database/account/shard replaces; rows changes update; a new schema version updates (the update
 * applies the schema); token or base URL alone updates without writes.
 */
export function diffRowsInputs(olds: Record<string, unknown>, news: Record<string, unknown>): pulumi.dynamic.DiffResult {
    const replaces = ["accountId", "databaseId", "shard"].filter((k) => olds[k] !== news[k]);
    const changed = ["rows", "schemaVersion", "apiToken", "apiBaseUrl"].filter((k) => canonical(olds[k]) !== canonical(news[k]));
    const all = [...replaces, ...changed];
    return { changes: all.length > 0, replaces, deleteBeforeReplace: false };
}

function outputs(inputs: RowsInputs): RowsOutputs {
    const out: RowsOutputs = { ...inputs, rowCount: Object.keys(inputs.rows).length };
    if (out.apiToken === undefined) delete out.apiToken;
    if (out.apiBaseUrl === undefined) delete out.apiBaseUrl;
    if (out.schemaVersion === undefined) delete out.schemaVersion;
    return out;
}

function client(props: RowsInputs, token: string): D1Client {
    return new D1Client({
        accountId: props.accountId, databaseId: props.databaseId, apiToken: token,
        apiBaseUrl: props.apiBaseUrl ?? settings.apiBaseUrl, rateLimit: settings.rateLimit,
        timeoutMs: settings.requestTimeoutMs,
    });
}

/** Runs `work` with the resource's token, then the configured one if Cloudflare rejects it (rotated/revoked). */
async function withClient<T>(props: RowsInputs, work: (d1: D1Client) => Promise<T>): Promise<T> {
    const tokens: string[] = [];
    try {
        return await withTokenFallback(props.apiToken, settings, process.env, (token) => work(client(props, token)), tokens);
    } catch (e) {
        const message = redact(e instanceof Error ? e.message : String(e), tokens);
        throw new Error(`RedirectRows "${props.shard}" (D1 database ${props.databaseId}): ${message}`);
    }
}

async function run(d1: D1Client, statements: Statement[]): Promise<void> {
    for (const batch of batches(statements)) await d1.query(batch);
}

const schema = (): Statement[] => schemaStatements().map((sql) => ({ sql, params: [] }));

/** A missing table or database means the rows are already gone. */
function isGone(e: unknown): boolean {
    return e instanceof CloudflareApiError && (e.status === 404 || e.hasCode(7404) || /no such table/i.test(e.message));
}

/** The implementation behind the serialized shim (provider/shim.ts): RedirectRows over the D1 HTTP API. */
export const provider: pulumi.dynamic.ResourceProvider = {
    async configure(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
        settings = readProviderSettings(req.config as ConfigSource);
    },

    async check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
        const inputs = Object.fromEntries(Object.entries(news).filter(([k, v]) => k !== "__provider" && v !== undefined));
        return { inputs, failures: checkRowsInputs(news) };
    },

    async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.DiffResult> {
        return diffRowsInputs(olds, news);
    },

    async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
        const inputs = parseInputs(props);
        // Schema first (IF NOT EXISTS), then idempotent upserts: a create retried after a crash converges.
        await withClient(inputs, (d1) => run(d1, [...schema(), ...upsertStatements(inputs.shard, inputs.rows)]));
        return { id: `${inputs.databaseId}/${inputs.shard}`, outs: outputs(inputs) };
    },

    async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
        const stored = parseInputs(props);
        const rows = await withClient(stored, async (d1) => {
            try {
                const [result] = await d1.query([{ sql: "SELECT path, location FROM redirects WHERE shard = ?", params: [stored.shard] }]);
                return Object.fromEntries(result.results.map((r) => [String(r.path), String(r.location)]));
            } catch (e) {
                if (isGone(e)) return {};
                throw e;
            }
        });
        // Outputs are what D1 holds; inputs stay the desired rows, so the next up writes back what went missing.
        const { rowCount: _count, ...inputs } = outputs(stored);
        return { id, props: outputs({ ...stored, rows }), inputs };
    },

    async update(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.UpdateResult> {
        const before = parseInputs(olds);
        const after = parseInputs(news);
        const { upserts, deletes } = diffRows(before.rows, after.rows);
        const newSchema = after.schemaVersion !== undefined && after.schemaVersion !== before.schemaVersion;
        if (Object.keys(upserts).length > 0 || deletes.length > 0 || newSchema) {
            await withClient(after, (d1) => run(d1, [
                ...schema(),
                ...deleteStatements(after.shard, deletes),
                ...upsertStatements(after.shard, upserts),
            ]));
        }
        return { outs: outputs(after) };
    },

    async delete(_id: string, props: Record<string, unknown>): Promise<void> {
        const stored = parseInputs(props);
        await withClient(stored, async (d1) => {
            try {
                await run(d1, deleteStatements(stored.shard, Object.keys(stored.rows)));
            } catch (e) {
                if (!isGone(e)) throw e;
            }
        });
    },
};
