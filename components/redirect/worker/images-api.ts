/** The Images API calls a webhook needs, with the Worker's own token: details, original bytes, delete, upload a file. */
import { isTransient, RetryPolicy, retryDecision, WORKER_RETRY } from "./retry";

/** `batch`: `baseUrl` is the batch host (paths start at `/images`, token from batchConfig()), which the account's global rate limit does not count. */
export interface ImagesApiConfig { baseUrl: string; accountId: string; token: string; batch?: boolean; retry?: RetryPolicy }

/** What the Worker keeps of an image to upload it again under the same custom ID. */
export interface ImageDetails { id: string; filename: string; meta: Record<string, unknown>; requireSignedURLs: boolean; creator?: string; variants: string[] }

export interface ImageFile { bytes: Uint8Array; contentType: string; filename: string }

export class ImagesApiError extends Error {
    constructor(readonly method: string, readonly path: string, readonly status: number, readonly codes: number[], detail: string) {
        super(`${method} ${path}: ${status ? `HTTP ${status}` : "no answer"}${codes.length ? `, code ${codes.join(",")}` : ""}: ${detail}`);
    }
}

/** Cloudflare's "Resource already exists" (an upload under a custom ID that is taken). */
export const CODE_EXISTS = 5409;
const CODE_NOT_FOUND = 5404;
const DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4";

interface Envelope { success?: boolean; errors?: { code: number; message: string }[]; result?: unknown }

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One API call with its retries: transient answers (429, 5xx, none) are retried per `config.retry`; any other answer is
 * returned. `form` is rebuilt per attempt. Throws ImagesApiError once the retries are used up.
 */
async function send(config: ImagesApiConfig, method: string, path: string, form?: () => FormData): Promise<Response> {
    const policy = config.retry ?? WORKER_RETRY;
    const url = `${config.baseUrl.replace(/\/$/, "")}${path}`;
    const start = Date.now();
    for (let attempts = 1; ; attempts++) {
        const timeoutMs = Math.max(1_000, Math.min(policy.attemptTimeoutMs, policy.budgetMs - (Date.now() - start)));
        let response: Response | undefined;
        let detail: string;
        try {
            response = await fetch(url, { method, headers: { authorization: `Bearer ${config.token}` }, body: form?.(), signal: AbortSignal.timeout(timeoutMs) });
        } catch (error) {
            detail = error instanceof Error ? error.message : String(error);
        }
        if (response && !isTransient({ status: response.status })) return response;
        let codes: number[] = [];
        if (response) {
            const envelope = await envelopeOf(response);
            codes = (envelope.errors ?? []).map((e) => e.code);
            detail = (envelope.errors ?? []).map((e) => e.message).join("; ") || "no error detail";
        }
        const outcome = response ? { status: response.status, retryAfter: response.headers.get("retry-after") } : { status: 0 };
        const decision = retryDecision(outcome, attempts, Date.now() - start, policy);
        if (!decision.retry) throw new ImagesApiError(method, path, outcome.status, codes, `${detail!}; ${decision.reason}`);
        await sleep(decision.delayMs);
    }
}

async function envelopeOf(response: Response): Promise<Envelope> {
    try {
        return (await response.json()) as Envelope;
    } catch {
        return {};
    }
}

function imagePath(config: ImagesApiConfig, imageId?: string, suffix = ""): string {
    const base = `${config.batch ? "" : `/accounts/${encodeURIComponent(config.accountId)}`}/images/v1`;
    return imageId === undefined ? base : `${base}/${encodeURIComponent(imageId)}${suffix}`;
}

function fail(method: string, path: string, status: number, envelope: Envelope): never {
    const errors = envelope.errors ?? [];
    throw new ImagesApiError(method, path, status, errors.map((e) => e.code), errors.map((e) => e.message).join("; ") || "no error detail");
}

const CODE_NO_ROUTE = 7003;

/** The image is missing (5404, or a bare 404); a 7003 "No route for the URI" is a wrong endpoint, never a missing image. */
const notFound = (status: number, envelope: Envelope): boolean => {
    const codes = (envelope.errors ?? []).map((e) => e.code);
    return codes.includes(CODE_NOT_FOUND) || (status === 404 && !codes.includes(CODE_NO_ROUTE));
};

/** GET the image's details; undefined when it does not exist. */
export async function getImage(config: ImagesApiConfig, imageId: string): Promise<ImageDetails | undefined> {
    const path = imagePath(config, imageId);
    const response = await send(config, "GET", path);
    const envelope = await envelopeOf(response);
    if (notFound(response.status, envelope)) return undefined;
    if (response.status >= 300 || envelope.success === false) fail("GET", path, response.status, envelope);
    const result = (envelope.result ?? {}) as Record<string, unknown>;
    const meta = result.meta && typeof result.meta === "object" && !Array.isArray(result.meta) ? result.meta as Record<string, unknown> : {};
    return {
        id: imageId,
        filename: typeof result.filename === "string" ? result.filename : "",
        meta,
        requireSignedURLs: result.requireSignedURLs === true,
        ...(typeof result.creator === "string" ? { creator: result.creator } : {}),
        variants: Array.isArray(result.variants) ? result.variants.filter((v): v is string => typeof v === "string") : [],
    };
}

/** GET the image's original bytes (`/blob`). */
export async function getImageBlob(config: ImagesApiConfig, imageId: string): Promise<Omit<ImageFile, "filename">> {
    const path = imagePath(config, imageId, "/blob");
    const response = await send(config, "GET", path);
    if (response.status !== 200) fail("GET", path, response.status, await envelopeOf(response));
    let bytes: Uint8Array;
    try {
        bytes = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
        throw new ImagesApiError("GET", path, response.status, [], `body cut off: ${error instanceof Error ? error.message : String(error)}`);
    }
    return { bytes, contentType: response.headers.get("content-type") ?? "application/octet-stream" };
}

/** DELETE the image; a missing image counts as deleted. */
export async function deleteImage(config: ImagesApiConfig, imageId: string): Promise<"deleted" | "not-found"> {
    const path = imagePath(config, imageId);
    const response = await send(config, "DELETE", path);
    const envelope = await envelopeOf(response);
    if (notFound(response.status, envelope)) return "not-found";
    if (response.status >= 300 || envelope.success === false) fail("DELETE", path, response.status, envelope);
    return "deleted";
}

/** Upload bytes as a multipart `file` into the custom ID, with its metadata; returns the new image's delivery URLs. */
export async function uploadImageFile(config: ImagesApiConfig, imageId: string, file: ImageFile,
    options: { metadata: Record<string, unknown>; requireSignedURLs?: boolean; creator?: string }): Promise<string[]> {
    const path = imagePath(config);
    const form = () => {
        const fields = new FormData();
        fields.set("file", new File([file.bytes], file.filename || "image", { type: file.contentType }));
        fields.set("id", imageId);
        fields.set("metadata", JSON.stringify(options.metadata));
        if (options.requireSignedURLs) fields.set("requireSignedURLs", "true");
        if (options.creator !== undefined) fields.set("creator", options.creator);
        return fields;
    };
    const response = await send(config, "POST", path, form);
    const envelope = await envelopeOf(response);
    if (response.status >= 300 || envelope.success === false) fail("POST", path, response.status, envelope);
    const result = envelope.result as { variants?: unknown } | undefined;
    return Array.isArray(result?.variants) ? result!.variants.filter((v): v is string => typeof v === "string") : [];
}

/**
 * The same API on the batch host with a fresh batch token, whose requests the account's global rate limit does not
 * count. A token refused outright (e.g. a token without the permission) keeps the account API; a transient failure throws.
 */
export async function batchConfig(config: ImagesApiConfig): Promise<ImagesApiConfig> {
    const path = `${imagePath(config)}/batch_token`;
    const response = await send(config, "GET", path);
    const envelope = await envelopeOf(response);
    const token = (envelope.result as { token?: unknown } | undefined)?.token;
    if (response.status >= 300 || envelope.success === false || typeof token !== "string") return config;
    const origin = config.baseUrl.replace(/\/$/, "") === DEFAULT_API_BASE ? "https://batch.imagedelivery.net" : `${new URL(config.baseUrl).origin}/batch`;
    return { ...config, baseUrl: origin, token, batch: true };
}
