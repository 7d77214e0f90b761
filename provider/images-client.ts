import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import FormData from "form-data";
import { z } from "zod";
import { CloudflareApiError, FileTooLargeError } from "./errors";
import { ApiClientOptions, ApiRequest, CloudflareApi, DEFAULT_API_BASE_URL, FormLike, normalizeBaseUrl } from "./http";
import { MAX_IMAGE_BYTES } from "./image-format";
import { forEachConcurrently } from "./pool";
import { DEFAULT_BATCH_BUDGET, RateBudget, RateLimiter, sharedLimiter, validateBudget } from "./rate-limiter";

/** Cloudflare Images' upload limit (10 MB). */
export const MAX_UPLOAD_BYTES = MAX_IMAGE_BYTES;
export const DEFAULT_LIST_PAGE_SIZE = 1000;

export interface CfImage {
    id: string;
    filename?: string | null;
    meta?: Record<string, unknown> | null;
    requireSignedURLs: boolean;
    uploaded: string;
    variants: string[];
    creator?: string | null;
}

export const CfImageSchema: z.ZodType<CfImage> = z.object({
    id: z.string(),
    filename: z.string().nullish(),
    meta: z.record(z.string(), z.unknown()).nullish(),
    requireSignedURLs: z.boolean().default(false),
    uploaded: z.string(),
    variants: z.array(z.string()).default([]),
    creator: z.string().nullish(),
});

const ListPageSchema = z.object({
    images: z.array(CfImageSchema),
    continuation_token: z.string().nullish(),
});
const StatsSchema = z.object({ count: z.object({ current: z.number(), allowed: z.number() }) });
const BatchTokenSchema = z.object({ token: z.string().min(1), expiresAt: z.string() });

export interface ImagesClientOptions extends ApiClientOptions {
    accountId: string;
    /** Send image requests to the Images batch host with a batch token (200 requests/s per token). */
    useBatchApi?: boolean;
    /** Default https://batch.imagedelivery.net for the real API, else `<apiBaseUrl origin>/batch` (the emulator). */
    batchBaseUrl?: string;
    /** Budget per batch token; default 200 per 1 s. */
    batchRateLimit?: RateBudget;
}

export interface UploadRequest {
    id?: string;
    url?: string;
    filePath?: string;
    metadata?: Record<string, unknown>;
    requireSignedURLs?: boolean;
    creator?: string;
}

export interface ImagePatch {
    metadata?: Record<string, unknown>;
    requireSignedURLs?: boolean;
}

/** Pure: the batch host that goes with an API base URL (see the module contract). */
export function defaultBatchBaseUrl(apiBaseUrl: string): string {
    const base = normalizeBaseUrl(apiBaseUrl);
    return base === DEFAULT_API_BASE_URL ? "https://batch.imagedelivery.net" : `${new URL(base).origin}/batch`;
}

/** Pure: the path segment of an image ID (custom IDs may hold "/", which becomes %2F). */
export function imagePath(id: string): string {
    return encodeURIComponent(id);
}

/** True when the error says the image does not exist (5404, or a bare 404), not e.g. "no route" (7003). */
export function isImageNotFound(err: unknown): boolean {
    return err instanceof CloudflareApiError && (err.hasCode(5404) || (err.status === 404 && err.codes.length === 0));
}

interface BatchToken {
    token: string;
    /** Fetch a new one from this time on (a margin before expiresAt). */
    refreshAt: number;
}

/** Pure: when to replace a batch token issued at `now` that expires at `expiresAt` (20% of its life, ≤ 60 s early). */
export function batchTokenRefreshAt(expiresAt: string, now: number): number {
    const end = Date.parse(expiresAt);
    if (Number.isNaN(end)) return now + 60_000;
    const ttl = Math.max(0, end - now);
    return end - Math.min(60_000, ttl * 0.2);
}

// Process-wide, like the limiters: every image of a deployment shares one batch token (and its budget) instead of
// spending an account request per resource on a token of its own.
const batchTokens = new Map<string, { current?: BatchToken; pending?: Promise<BatchToken> }>();

function fingerprint(secret: string): string {
    return createHash("sha256").update(secret).digest("hex").slice(0, 16);
}

/** Cloudflare Images through one CloudflareApi: upload, get, update, delete, list (v2), stats; optional batch API. */
export class ImagesClient {
    readonly api: CloudflareApi;
    private readonly accountPath: string;
    private readonly batch?: { baseUrl: string; budget: RateBudget; cacheKey: string; configured: boolean };

    constructor(opts: ImagesClientOptions) {
        if (typeof opts.accountId !== "string" || opts.accountId.trim() === "") {
            throw new Error("accountId is empty: set sourcing-kit:accountId to the Cloudflare account ID " +
                "(dashboard → Account home → Account ID)");
        }
        this.api = new CloudflareApi(opts);
        this.accountPath = `/accounts/${encodeURIComponent(opts.accountId)}`;
        if (opts.useBatchApi) {
            const budget = opts.batchRateLimit ?? DEFAULT_BATCH_BUDGET;
            validateBudget(budget, "batchRateLimit");
            this.batch = {
                baseUrl: normalizeBaseUrl(opts.batchBaseUrl ?? defaultBatchBaseUrl(this.api.apiBaseUrl), "batchBaseUrl"),
                budget,
                configured: opts.batchRateLimit !== undefined,
                cacheKey: `${this.api.apiBaseUrl} ${opts.accountId} ${fingerprint(opts.apiToken)}`,
            };
        }
    }

    /** Uploads by URL (Cloudflare fetches it) or by streaming a local file. A taken custom ID fails with 5409. */
    async upload(req: UploadRequest): Promise<CfImage> {
        if ((req.url === undefined) === (req.filePath === undefined)) {
            throw new Error(`upload${req.id ? ` ${req.id}` : ""}: give exactly one of url or filePath`);
        }
        let file: { path: string; size: number } | undefined;
        if (req.filePath !== undefined) {
            let stat: fs.Stats;
            try {
                stat = await fs.promises.stat(req.filePath);
            } catch (e) {
                throw new Error(`filePath ${req.filePath}: cannot read the file (${(e as Error).message})`);
            }
            if (!stat.isFile()) throw new Error(`filePath ${req.filePath}: not a regular file`);
            if (stat.size > MAX_UPLOAD_BYTES) throw new FileTooLargeError(req.filePath, stat.size, MAX_UPLOAD_BYTES);
            file = { path: req.filePath, size: stat.size };
        }
        const streams: fs.ReadStream[] = [];
        const form = (): FormLike => {
            const f = new FormData();
            if (req.id !== undefined) f.append("id", req.id);
            if (req.metadata !== undefined) f.append("metadata", JSON.stringify(req.metadata));
            if (req.requireSignedURLs !== undefined) f.append("requireSignedURLs", String(req.requireSignedURLs));
            if (req.creator !== undefined) f.append("creator", req.creator);
            if (file) {
                for (const s of streams) s.destroy();
                const stream = fs.createReadStream(file.path);
                streams.push(stream);
                f.append("file", stream, { filename: path.basename(file.path), knownLength: file.size });
            } else {
                f.append("url", req.url!);
                // axios never frees the connection of a piped form of strings only: one new socket per URL upload,
                // left open (20,000 file descriptors into a 4-stack batch run). As one buffer it is kept alive and reused.
                return { body: f.getBuffer(), headers: f.getHeaders() as Record<string, string> };
            }
            return f;
        };
        try {
            return await this.imagesRequest((prefix) => ({
                method: "POST", path: `${prefix}/images/v1`, form, schema: CfImageSchema,
                // Without a custom ID a repeated upload makes a second image; with one it answers 5409.
                idempotent: req.id !== undefined,
            }));
        } finally {
            for (const s of streams) s.destroy();
        }
    }

    /** The image, or undefined when it does not exist. */
    async get(id: string): Promise<CfImage | undefined> {
        try {
            return await this.imagesRequest((prefix) => ({
                method: "GET", path: `${prefix}/images/v1/${imagePath(id)}`, schema: CfImageSchema,
            }));
        } catch (e) {
            if (isImageNotFound(e)) return undefined;
            throw e;
        }
    }

    /** The original bytes as uploaded (`GET images/v1/{id}/blob`), or undefined when the image does not exist. */
    async blob(id: string): Promise<Buffer | undefined> {
        try {
            return await this.imagesRequest((prefix) => ({
                method: "GET", path: `${prefix}/images/v1/${imagePath(id)}/blob`, bytes: true, schema: z.instanceof(Buffer),
            }));
        } catch (e) {
            if (isImageNotFound(e)) return undefined;
            throw e;
        }
    }

    /** PATCHes metadata and/or requireSignedURLs (only the keys given). */
    async update(id: string, patch: ImagePatch): Promise<CfImage> {
        const body: Record<string, unknown> = {};
        if (patch.metadata !== undefined) body.metadata = patch.metadata;
        if (patch.requireSignedURLs !== undefined) body.requireSignedURLs = patch.requireSignedURLs;
        return this.imagesRequest((prefix) => ({
            method: "PATCH", path: `${prefix}/images/v1/${imagePath(id)}`, json: body, schema: CfImageSchema,
        }));
    }

    async delete(id: string): Promise<"deleted" | "not-found"> {
        try {
            await this.imagesRequest((prefix) => ({
                method: "DELETE", path: `${prefix}/images/v1/${imagePath(id)}`, schema: z.unknown(),
            }));
            return "deleted";
        } catch (e) {
            if (isImageNotFound(e)) return "not-found";
            throw e;
        }
    }

    /** Every image (v2 list, following continuation_token to the last page). */
    list(opts: { perPage?: number; sortOrder?: "asc" | "desc" } = {}): AsyncIterable<CfImage> {
        const perPage = opts.perPage ?? DEFAULT_LIST_PAGE_SIZE;
        if (!Number.isInteger(perPage) || perPage < 10 || perPage > 10_000) {
            throw new Error(`list perPage must be an integer from 10 to 10000 (got ${opts.perPage})`);
        }
        const self = this;
        return {
            async *[Symbol.asyncIterator]() {
                let token: string | undefined;
                do {
                    const page = await self.imagesRequest((prefix) => ({
                        method: "GET", path: `${prefix}/images/v2`, schema: ListPageSchema,
                        query: { per_page: perPage, sort_order: opts.sortOrder, continuation_token: token },
                    }));
                    yield* page.images;
                    token = page.continuation_token || undefined;
                } while (token !== undefined);
            },
        };
    }

    /**
     * The images under `ids` as Cloudflare holds them (null: missing): one read each, or, when that takes more
     * requests, by listing the account (`perPage` images a request; only for more than `listAbove` IDs, which
     * spares the stats request of small lookups). `onProgress` is called once per ID read, or found in the listing.
     */
    async find(ids: readonly string[], opts: { concurrency: number; perPage?: number; listAbove?: number; onProgress?: () => void }): Promise<Map<string, CfImage | null>> {
        const found = new Map<string, CfImage | null>(ids.map((id) => [id, null]));
        const perPage = opts.perPage ?? DEFAULT_LIST_PAGE_SIZE;
        if (ids.length > (opts.listAbove ?? 0)) {
            const { current } = await this.stats();
            if (Math.ceil(current / perPage) < ids.length) {
                for await (const image of this.list({ perPage })) {
                    if (!found.has(image.id)) continue;
                    found.set(image.id, image);
                    opts.onProgress?.();
                }
                return found;
            }
        }
        await forEachConcurrently(ids, opts.concurrency, async (id) => {
            found.set(id, (await this.get(id)) ?? null);
            opts.onProgress?.();
        });
        return found;
    }

    /** Images stored and allowed on the account (always the account API: the batch host has no stats). */
    async stats(): Promise<{ current: number; allowed: number }> {
        const res = await this.api.request({
            method: "GET", path: `${this.accountPath}/images/v1/stats`, schema: StatsSchema,
        });
        return res.count;
    }

    /** Runs an image request on the account API, or on the batch host with a (refreshed) batch token. */
    private async imagesRequest<T>(build: (prefix: string) => ApiRequest<T>): Promise<T> {
        if (!this.batch) return this.api.request(build(this.accountPath));
        const batch = this.batch;
        let used: string | undefined;
        // The token is picked per attempt, after the limiter's wait, so a token that expired meanwhile is not sent.
        const send = (rejected?: string) => this.api.request({
            ...build(""), baseUrl: batch.baseUrl, limiter: this.batchLimiter(),
            token: async () => (used = await this.batchToken(rejected)),
        });
        try {
            // A token to fetch is fetched before the batch limiter's permit: otherwise the first requests would hold
            // their slots through the account API call and reach the batch host late, all at once.
            await this.batchToken();
            return await send();
        } catch (e) {
            const refused = e instanceof CloudflareApiError &&
                (e.status === 401 || (e.status === 403 && e.hasCode(10000)));
            if (!refused || used === undefined) throw e;
            return send(used);
        }
    }

    /** One limiter per batch host and account token: only one batch token is in use at a time. */
    private batchLimiter(): RateLimiter {
        return sharedLimiter(`batch ${this.batch!.baseUrl} ${this.batch!.cacheKey}`, this.batch!.budget,
            { isDefault: this.batch!.configured === false });
    }

    /** The shared batch token, fetched once and again before it expires (or once the host refused `rejected`). */
    private async batchToken(rejected?: string): Promise<string> {
        const key = this.batch!.cacheKey;
        let entry = batchTokens.get(key);
        if (!entry) {
            entry = {};
            batchTokens.set(key, entry);
        }
        const slot = entry;
        if (rejected !== undefined && slot.current?.token === rejected) slot.current = undefined;
        if (slot.current && Date.now() < slot.current.refreshAt) return slot.current.token;
        if (!slot.pending) {
            slot.pending = this.api.request({
                method: "GET", path: `${this.accountPath}/images/v1/batch_token`, schema: BatchTokenSchema,
            }).then((r) => {
                const token: BatchToken = { token: r.token, refreshAt: batchTokenRefreshAt(r.expiresAt, Date.now()) };
                slot.current = token;
                return token;
            }).finally(() => {
                slot.pending = undefined;
            });
        }
        return (await slot.pending).token;
    }
}
