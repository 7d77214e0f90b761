import axios from "axios";
import type FormData from "form-data";
import { z } from "zod";
import { parseRetryAfterMs, retryDelayMs } from "./backoff";
import { CloudflareApiError, CloudflareErrorItem, redact } from "./errors";
import { DEFAULT_ACCOUNT_BUDGET, Permit, RateBudget, RateLimiter, sharedLimiter, validateBudget } from "./rate-limiter";

export { backoffDelayMs, parseRetryAfterMs } from "./backoff";
export { sharedLimiter, RateLimiter, DEFAULT_ACCOUNT_BUDGET, DEFAULT_BATCH_BUDGET } from "./rate-limiter";
export type { RateBudget, Permit } from "./rate-limiter";

/** A multipart body: a form-data stream (files), or a form of strings already serialized (see images-client upload). */
export type FormLike = FormData | { body: Buffer; headers: Record<string, string> };

export const DEFAULT_API_BASE_URL = "https://api.cloudflare.com/client/v4";
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_UPLOAD_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_ATTEMPTS = 8;
export const DEFAULT_BASE_DELAY_MS = 500;
export const DEFAULT_MAX_DELAY_MS = 30_000;
/** A Retry-After longer than this is not waited out: the call fails and says so. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 15 * 60_000;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const USER_AGENT = "sourcing-kit (Cloudflare Images migration; axios)";

export interface ApiClientOptions {
    apiToken: string;
    /** Default https://api.cloudflare.com/client/v4; the emulator's `baseUrl` in tests. */
    apiBaseUrl?: string;
    /** Per-attempt timeout; default 30 s. When set, uploads use it too unless uploadTimeoutMs is set. */
    timeoutMs?: number;
    /** Per-attempt timeout of uploads (requests with `form`); default timeoutMs if set, else 60 s. */
    uploadTimeoutMs?: number;
    /** Attempts per request including the first; default 8. */
    maxAttempts?: number;
    /** Backoff base and cap (full jitter); default 500 ms and 30 s. */
    baseDelayMs?: number;
    maxDelayMs?: number;
    /** A 429 whose Retry-After exceeds this fails at once instead of waiting; default 15 minutes. */
    maxRetryAfterMs?: number;
    /** Account request budget shared by the whole process; default 1,100 per 300 s. */
    rateLimit?: RateBudget;
    /** Cap on requests in flight through the account limiter; default unlimited. */
    maxConcurrent?: number;
    /** Registry key of the account limiter; default the apiBaseUrl (Cloudflare counts per user, not per token). */
    limiterKey?: string;
}

export type HttpMethod = "GET" | "POST" | "PATCH" | "PUT" | "DELETE";

export interface ApiRequest<T> {
    method: HttpMethod;
    /** After the base URL, e.g. /accounts/x/images/v1 (path segments already encoded). */
    path: string;
    query?: Record<string, string | number | undefined>;
    json?: unknown;
    /** Multipart body, rebuilt for every attempt (streams cannot be replayed). */
    form?: () => FormLike;
    schema: z.ZodType<T>;
    timeoutMs?: number;
    /** Another host with the same envelope, e.g. the Images batch host. */
    baseUrl?: string;
    /**
     * Bearer token for this request instead of apiToken (e.g. a batch token), or a function that supplies it for
     * each attempt once the limiter lets it go (so a token that expired during the wait is not used). Redacted.
     */
    token?: string | (() => Promise<string>);
    /** Limiter for this request instead of the account limiter (e.g. the batch token's). */
    limiter?: RateLimiter;
    /**
     * The answer is raw bytes, not an envelope (the image blob): a 2xx body is handed to `schema` as a Buffer; any
     * other status is read as an envelope error, retried like every request.
     */
    bytes?: boolean;
    /**
     * False when repeating a request that reached the server could do the work twice (an upload without a custom
     * ID): then only 429s and refused connections are retried. Default true.
     */
    idempotent?: boolean;
}

const ErrorItemSchema = z.object({ code: z.coerce.number(), message: z.string() });
const EnvelopeSchema = z.object({
    success: z.boolean(),
    errors: z.array(z.unknown()).nullish(),
    result: z.unknown().optional(),
});

/** What one attempt came to, before it becomes a result or a CloudflareApiError. */
export type AttemptOutcome<T> =
    | { ok: true; value: T }
    | {
        ok: false; status?: number; errors: CloudflareErrorItem[]; detail?: string; retryable: boolean;
        /** The server certainly did not act on it (429, connection refused): safe to repeat even if not idempotent. */
        notApplied: boolean; retryAfterMs?: number; networkCode?: string;
    };

export type AttemptFailure = Extract<AttemptOutcome<unknown>, { ok: false }>;

/** Pure: interprets an HTTP response (status, headers, raw body) as a Cloudflare envelope. */
export function interpretResponse<T>(status: number, headers: Record<string, unknown>, body: string,
    schema: z.ZodType<T>): AttemptOutcome<T> {
    let parsed: unknown;
    try {
        parsed = body === "" ? undefined : JSON.parse(body);
    } catch {
        parsed = undefined;
    }
    const envelope = EnvelopeSchema.safeParse(parsed);
    const errors: CloudflareErrorItem[] = [];
    if (envelope.success) {
        for (const item of envelope.data.errors ?? []) {
            const e = ErrorItemSchema.safeParse(item);
            if (e.success) errors.push({ code: e.data.code, message: e.data.message });
        }
    }
    if (status >= 200 && status < 300) {
        if (!envelope.success) {
            return { ok: false, status, errors, detail: `response is not a Cloudflare API envelope: ${snippet(body)}`,
                retryable: false, notApplied: false };
        }
        if (!envelope.data.success) {
            return { ok: false, status, errors, detail: errors.length ? undefined : "success: false", retryable: false,
                notApplied: false };
        }
        const result = schema.safeParse(envelope.data.result);
        if (!result.success) {
            const issues = result.error.issues.slice(0, 3)
                .map((i) => `${i.path.length ? i.path.join(".") : "result"}: ${i.message}`).join("; ");
            return { ok: false, status, errors, detail: `unexpected result shape (${issues})`, retryable: false,
                notApplied: false };
        }
        return { ok: true, value: result.data };
    }
    const retryable = status === 429 || status >= 500;
    const retryAfter = headerValue(headers, "retry-after");
    let detail: string | undefined;
    if (errors.length === 0) {
        detail = status >= 300 && status < 400
            ? `unexpected redirect to ${String(headerValue(headers, "location") ?? "?")}`
            : body ? snippet(body) : undefined;
    }
    return {
        ok: false, status, errors, detail, retryable, notApplied: status === 429,
        retryAfterMs: parseRetryAfterMs(retryAfter),
    };
}

/** Network error codes worth another attempt. */
const RETRYABLE_NETWORK_CODES = new Set([
    "ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "ECONNABORTED", "EPIPE", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH",
    "ENETDOWN", "EHOSTDOWN", "ERR_SOCKET_CONNECTION_TIMEOUT", "ERR_STREAM_PREMATURE_CLOSE", "UND_ERR_SOCKET",
    "HPE_INVALID_CONSTANT", "HPE_INVALID_CHUNK_SIZE", "HPE_UNEXPECTED_CONTENT_LENGTH", "ERR_BAD_RESPONSE",
]);

/** Pure: interprets a failure without an HTTP response. */
export function interpretNetworkError(code: string | undefined, message: string, timedOutAfterMs?: number):
    AttemptFailure {
    if (timedOutAfterMs !== undefined) {
        return { ok: false, errors: [], retryable: true, notApplied: false, networkCode: "ETIMEDOUT",
            detail: `no response within ${timedOutAfterMs} ms (raise sourcing-kit:requestTimeoutMs if the network is slow)` };
    }
    const hangUp = /socket hang up/i.test(message);
    const networkCode = code ?? (hangUp ? "ECONNRESET" : undefined);
    return {
        ok: false, errors: [], networkCode,
        // ERR_BAD_RESPONSE is axios' code for a body cut short (retry) and for an oversized one (do not).
        retryable: hangUp || (networkCode !== undefined && RETRYABLE_NETWORK_CODES.has(networkCode) &&
            !/maxContentLength/.test(message)),
        notApplied: networkCode === "ECONNREFUSED",
        detail: `network error ${networkCode ?? ""}${message ? `: ${message}` : ""}`.replace("error :", "error:"),
    };
}

function headerValue(headers: Record<string, unknown>, name: string): string | undefined {
    const v = headers[name] ?? headers[name.toLowerCase()];
    if (v === undefined || v === null) return undefined;
    return Array.isArray(v) ? String(v[0]) : String(v);
}

function snippet(body: string): string {
    const flat = body.replace(/\s+/g, " ").trim();
    return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat || "(empty body)";
}

/** Waits at least ms (timers may fire a little early against the wall clock, and Retry-After is a lower bound). */
async function sleep(ms: number): Promise<void> {
    const until = performance.now() + ms;
    for (let left = ms; left > 0; left = until - performance.now()) {
        await new Promise((resolve) => setTimeout(resolve, Math.ceil(left)));
    }
}

function positive(name: string, value: number | undefined, fallback: number): number {
    if (value === undefined) return fallback;
    if (!(typeof value === "number" && value > 0 && Number.isFinite(value))) {
        throw new Error(`${name} must be a positive number (got ${value})`);
    }
    return value;
}

export function normalizeBaseUrl(value: string, name = "apiBaseUrl"): string {
    let url: URL;
    try {
        url = new URL(value);
    } catch {
        throw new Error(`${name} "${value}" is not a URL (expected e.g. ${DEFAULT_API_BASE_URL})`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
        throw new Error(`${name} "${value}" must be an http(s) URL`);
    }
    return value.replace(/\/+$/, "");
}

/**
 * The one HTTP client for Cloudflare's v4 API: envelopes checked with zod, timeouts, retries with full-jitter
 * backoff that honour Retry-After, and the process-wide limiter. Errors are CloudflareApiError without the token.
 */
export class CloudflareApi {
    readonly apiBaseUrl: string;
    private readonly token: string;
    private readonly timeoutMs: number;
    private readonly uploadTimeoutMs: number;
    private readonly maxAttempts: number;
    private readonly backoff: { baseDelayMs: number; maxDelayMs: number };
    private readonly maxRetryAfterMs: number;
    readonly limiter: RateLimiter;

    constructor(opts: ApiClientOptions) {
        if (typeof opts.apiToken !== "string" || opts.apiToken.trim() === "") {
            throw new Error("apiToken is empty: set the secret cloudflare:apiToken " +
                "(pulumi config set --secret cloudflare:apiToken ...) or the CLOUDFLARE_API_TOKEN environment variable");
        }
        this.token = opts.apiToken;
        this.apiBaseUrl = normalizeBaseUrl(opts.apiBaseUrl ?? DEFAULT_API_BASE_URL);
        this.timeoutMs = positive("timeoutMs", opts.timeoutMs, DEFAULT_TIMEOUT_MS);
        this.uploadTimeoutMs = positive("uploadTimeoutMs", opts.uploadTimeoutMs, opts.timeoutMs ?? DEFAULT_UPLOAD_TIMEOUT_MS);
        const attempts = opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
        if (!Number.isInteger(attempts) || attempts < 1) {
            throw new Error(`maxAttempts must be an integer of at least 1 (got ${opts.maxAttempts})`);
        }
        this.maxAttempts = attempts;
        this.backoff = {
            baseDelayMs: positive("baseDelayMs", opts.baseDelayMs, DEFAULT_BASE_DELAY_MS),
            maxDelayMs: positive("maxDelayMs", opts.maxDelayMs, DEFAULT_MAX_DELAY_MS),
        };
        this.maxRetryAfterMs = positive("maxRetryAfterMs", opts.maxRetryAfterMs, DEFAULT_MAX_RETRY_AFTER_MS);
        const budget: RateBudget = { ...(opts.rateLimit ?? DEFAULT_ACCOUNT_BUDGET) };
        if (opts.maxConcurrent !== undefined) budget.maxConcurrent = opts.maxConcurrent;
        validateBudget(budget);
        this.limiter = sharedLimiter(opts.limiterKey ?? `api ${this.apiBaseUrl}`, budget,
            { isDefault: opts.rateLimit === undefined && opts.maxConcurrent === undefined });
    }

    async request<T>(req: ApiRequest<T>): Promise<T> {
        const secrets: (string | undefined)[] = [this.token];
        if (typeof req.token === "string") secrets.push(req.token);
        const limiter = req.limiter ?? this.limiter;
        for (let attempt = 1; ; attempt++) {
            const { outcome, permit } = await this.attempt(req, limiter, secrets);
            if (outcome.ok) return outcome.value;
            const mayRepeat = req.idempotent !== false || outcome.notApplied;
            const tooLong = outcome.retryAfterMs !== undefined && outcome.retryAfterMs > this.maxRetryAfterMs;
            if (!outcome.retryable || !mayRepeat || attempt >= this.maxAttempts || tooLong) {
                throw new CloudflareApiError({
                    method: req.method, path: req.path, status: outcome.status, errors: outcome.errors,
                    detail: tooLong ? [outcome.detail, `Retry-After ${outcome.retryAfterMs} ms exceeds maxRetryAfterMs`]
                        .filter(Boolean).join("; ") : outcome.detail,
                    retryable: outcome.retryable, attempts: attempt, networkCode: outcome.networkCode,
                    retryAfterMs: outcome.retryAfterMs, secrets,
                });
            }
            const delay = retryDelayMs(attempt - 1, this.backoff, outcome.retryAfterMs);
            // A 429 means the server counts more than we do: the limiter holds every caller sharing it, not just this
            // one (or, for the batch host's start-counted budget, widens its margin first).
            if (outcome.status === 429) limiter.rateLimited(permit, outcome.retryAfterMs ?? delay);
            await sleep(delay);
        }
    }

    /** One attempt holding a permit of `limiter`; the permit (released) tells the limiter which request a 429 hit. */
    private async attempt<T>(req: ApiRequest<T>, limiter: RateLimiter, secrets: (string | undefined)[]):
        Promise<{ outcome: AttemptOutcome<T>; permit: Permit }> {
        const timeoutMs = req.timeoutMs ?? (req.form ? this.uploadTimeoutMs : this.timeoutMs);
        const url = buildUrl(req.baseUrl ? normalizeBaseUrl(req.baseUrl, "baseUrl") : this.apiBaseUrl, req.path,
            req.query);
        const permit = await limiter.acquire();
        try {
            return { outcome: await this.send(req, url, timeoutMs, secrets), permit };
        } finally {
            permit.release();
        }
    }

    private async send<T>(req: ApiRequest<T>, url: string, timeoutMs: number, secrets: (string | undefined)[]):
        Promise<AttemptOutcome<T>> {
        let timer: NodeJS.Timeout | undefined;
        try {
            const token = typeof req.token === "function" ? await req.token() : req.token ?? this.token;
            if (!secrets.includes(token)) secrets.push(token);
            const controller = new AbortController();
            let timedOut = false;
            timer = setTimeout(() => {
                timedOut = true;
                controller.abort();
            }, timeoutMs);
            const headers: Record<string, string> = {
                Authorization: `Bearer ${token}`, Accept: "application/json", "User-Agent": USER_AGENT,
            };
            let data: unknown;
            if (req.form) {
                const form = req.form();
                if ("body" in form && Buffer.isBuffer(form.body)) {
                    data = form.body;
                    Object.assign(headers, form.headers);
                } else {
                    data = form;
                }
            } else if (req.json !== undefined) {
                data = JSON.stringify(req.json);
                headers["Content-Type"] = "application/json";
            }
            try {
                if (req.bytes) headers.Accept = "*/*";
                const res = await axios.request<string | ArrayBuffer>({
                    url, method: req.method, data, headers, signal: controller.signal,
                    responseType: req.bytes ? "arraybuffer" : "text", transformResponse: [(d: unknown) => d], validateStatus: () => true,
                    maxRedirects: 0, maxBodyLength: Infinity, maxContentLength: MAX_RESPONSE_BYTES,
                });
                if (req.bytes && res.status >= 200 && res.status < 300) {
                    const parsed = req.schema.safeParse(Buffer.from(res.data as ArrayBuffer));
                    return parsed.success ? { ok: true, value: parsed.data }
                        : { ok: false, status: res.status, errors: [], detail: "unexpected body", retryable: false, notApplied: false };
                }
                const body = typeof res.data === "string" ? res.data : res.data === undefined ? ""
                    : res.data instanceof ArrayBuffer ? Buffer.from(res.data).toString("utf8") : String(res.data);
                return interpretResponse(res.status, { ...(res.headers as Record<string, unknown>) }, body, req.schema);
            } catch (e) {
                const err = e as { code?: unknown; message?: unknown };
                const code = typeof err.code === "string" && err.code !== "ERR_CANCELED" ? err.code : undefined;
                const message = redact(typeof err.message === "string" ? err.message : String(e), secrets);
                return interpretNetworkError(code, message, timedOut ? timeoutMs : undefined);
            }
        } finally {
            clearTimeout(timer);
        }
    }
}

/** Pure: base + path + query string (undefined query values dropped). */
export function buildUrl(base: string, path: string, query?: Record<string, string | number | undefined>): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return `${base}${path.startsWith("/") ? path : `/${path}`}${qs ? `?${qs}` : ""}`;
}
