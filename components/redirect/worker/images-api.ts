/** The Images API calls a webhook needs, with the Worker's own token: details, original bytes, delete, upload a file. */

export interface ImagesApiConfig { baseUrl: string; accountId: string; token: string }

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
const TIMEOUT_MS = 30_000;

interface Envelope { success?: boolean; errors?: { code: number; message: string }[]; result?: unknown }

async function send(config: ImagesApiConfig, method: string, path: string, body?: FormData): Promise<Response> {
    try {
        return await fetch(`${config.baseUrl.replace(/\/$/, "")}${path}`, {
            method,
            headers: { authorization: `Bearer ${config.token}` },
            body,
            signal: AbortSignal.timeout(TIMEOUT_MS),
        });
    } catch (error) {
        throw new ImagesApiError(method, path, 0, [], error instanceof Error ? error.message : String(error));
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
    const base = `/accounts/${encodeURIComponent(config.accountId)}/images/v1`;
    return imageId === undefined ? base : `${base}/${encodeURIComponent(imageId)}${suffix}`;
}

function fail(method: string, path: string, status: number, envelope: Envelope): never {
    const errors = envelope.errors ?? [];
    throw new ImagesApiError(method, path, status, errors.map((e) => e.code), errors.map((e) => e.message).join("; ") || "no error detail");
}

const notFound = (status: number, envelope: Envelope): boolean => status === 404 || envelope.errors?.some((e) => e.code === CODE_NOT_FOUND) === true;

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
    const form = new FormData();
    form.set("file", new File([file.bytes], file.filename || "image", { type: file.contentType }));
    form.set("id", imageId);
    form.set("metadata", JSON.stringify(options.metadata));
    if (options.requireSignedURLs) form.set("requireSignedURLs", "true");
    if (options.creator !== undefined) form.set("creator", options.creator);
    const response = await send(config, "POST", path, form);
    const envelope = await envelopeOf(response);
    if (response.status >= 300 || envelope.success === false) fail("POST", path, response.status, envelope);
    const result = envelope.result as { variants?: unknown } | undefined;
    return Array.isArray(result?.variants) ? result!.variants.filter((v): v is string => typeof v === "string") : [];
}
