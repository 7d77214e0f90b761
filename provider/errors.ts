/** One Cloudflare error item as the API envelope carries it. */
export interface CloudflareErrorItem {
    code: number;
    message: string;
}

export interface CloudflareApiErrorInit {
    method: string;
    path: string;
    status?: number;
    errors?: CloudflareErrorItem[];
    /** Text used when there are no Cloudflare error items, e.g. "network error ECONNRESET". */
    detail?: string;
    retryable: boolean;
    attempts?: number;
    /** Node/axios error code of a network failure (ECONNRESET, ETIMEDOUT, ...). */
    networkCode?: string;
    /** The server's Retry-After on the last answer, in ms. */
    retryAfterMs?: number;
    /** Values that must never appear in the message (API token, batch token). */
    secrets?: (string | undefined)[];
}

/**
 * A failed Cloudflare API call. The message reads
 * `POST /accounts/<acc>/images/v1: HTTP 409, code 5409: Resource already exists…` and never holds a token:
 * everything that goes into it is passed through `redact`.
 */
export class CloudflareApiError extends Error {
    readonly status?: number;
    readonly codes: number[];
    readonly errors: CloudflareErrorItem[];
    readonly method: string;
    readonly path: string;
    readonly retryable: boolean;
    /** How many HTTP attempts were made; a 5409 after attempts > 1 may be the echo of our own first attempt. */
    readonly attempts: number;
    readonly networkCode?: string;
    readonly retryAfterMs?: number;

    constructor(init: CloudflareApiErrorInit) {
        const secrets = init.secrets ?? [];
        const errors = (init.errors ?? []).map((e) => ({ code: e.code, message: redact(e.message, secrets) }));
        const path = redact(init.path, secrets);
        super(redact(formatApiErrorMessage({ ...init, path, errors }), secrets));
        this.name = "CloudflareApiError";
        this.status = init.status;
        this.errors = errors;
        this.codes = errors.map((e) => e.code);
        this.method = init.method;
        this.path = path;
        this.retryable = init.retryable;
        this.attempts = init.attempts ?? 1;
        this.networkCode = init.networkCode;
        this.retryAfterMs = init.retryAfterMs;
    }

    hasCode(code: number): boolean {
        return this.codes.includes(code);
    }

    /** True for "this image/resource does not exist" (HTTP 404 or Images code 5404). */
    get isNotFound(): boolean {
        return this.status === 404 || this.hasCode(5404);
    }

    toJSON(): Record<string, unknown> {
        return {
            name: this.name, message: this.message, status: this.status, codes: this.codes, errors: this.errors,
            method: this.method, path: this.path, retryable: this.retryable, attempts: this.attempts,
            networkCode: this.networkCode, retryAfterMs: this.retryAfterMs,
        };
    }
}

/** Pure: the human-readable message of a CloudflareApiError (before redaction). */
export function formatApiErrorMessage(init: Pick<CloudflareApiErrorInit, "method" | "path" | "status" | "errors" |
    "detail" | "attempts">): string {
    const parts: string[] = [];
    if (init.status !== undefined) parts.push(`HTTP ${init.status}`);
    const items = (init.errors ?? []).map((e) => `code ${e.code}: ${e.message}`);
    if (items.length > 0) parts.push(items.join("; "));
    if (init.detail) parts.push(init.detail);
    if (parts.length === 0) parts.push("request failed");
    const attempts = init.attempts !== undefined && init.attempts > 1 ? ` (after ${init.attempts} attempts)` : "";
    return `${init.method} ${init.path}: ${parts.join(", ")}${attempts}`;
}

/** Replaces every occurrence of each non-empty secret with "[secret]". */
export function redact(text: string, secrets: (string | undefined)[]): string {
    let out = text;
    // Longest first, so a secret that contains another one is replaced whole.
    const list = secrets.filter((s): s is string => typeof s === "string" && s.length > 0)
        .sort((a, b) => b.length - a.length);
    for (const secret of list) out = out.split(secret).join("[secret]");
    return out;
}

/** An upload refused before anything was sent: the file is larger than Cloudflare Images accepts. */
export class FileTooLargeError extends Error {
    readonly filePath: string;
    readonly size: number;
    readonly limit: number;

    constructor(filePath: string, size: number, limit: number) {
        super(`filePath ${filePath}: the file is ${size} bytes, over Cloudflare Images' upload limit of ${limit} ` +
            `bytes (10 MB); shrink or re-encode the image, or exclude it from the source`);
        this.name = "FileTooLargeError";
        this.filePath = filePath;
        this.size = size;
        this.limit = limit;
    }
}
