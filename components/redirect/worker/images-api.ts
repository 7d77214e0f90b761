/** The two Images API calls a webhook needs, with the Worker's own token: delete an image, upload one by URL. */

export interface ImagesApiConfig { baseUrl: string; accountId: string; token: string }

export class ImagesApiError extends Error {
    constructor(readonly method: string, readonly path: string, readonly status: number, readonly codes: number[], detail: string) {
        super(`${method} ${path}: HTTP ${status}${codes.length ? `, code ${codes.join(",")}` : ""}: ${detail}`);
    }
}

interface Envelope { success?: boolean; errors?: { code: number; message: string }[]; result?: unknown }

async function call(config: ImagesApiConfig, method: string, path: string, body?: FormData): Promise<{ status: number; envelope: Envelope }> {
    const response = await fetch(`${config.baseUrl.replace(/\/$/, "")}${path}`, {
        method,
        headers: { authorization: `Bearer ${config.token}` },
        body,
    });
    let envelope: Envelope = {};
    try {
        envelope = (await response.json()) as Envelope;
    } catch {
        envelope = {};
    }
    return { status: response.status, envelope };
}

function imagePath(config: ImagesApiConfig, imageId?: string): string {
    const base = `/accounts/${encodeURIComponent(config.accountId)}/images/v1`;
    return imageId === undefined ? base : `${base}/${encodeURIComponent(imageId)}`;
}

function fail(method: string, path: string, status: number, envelope: Envelope): never {
    const errors = envelope.errors ?? [];
    throw new ImagesApiError(method, path, status, errors.map((e) => e.code), errors.map((e) => e.message).join("; ") || "no error detail");
}

/** DELETE the image; a missing image counts as deleted. */
export async function deleteImage(config: ImagesApiConfig, imageId: string): Promise<"deleted" | "not-found"> {
    const path = imagePath(config, imageId);
    const { status, envelope } = await call(config, "DELETE", path);
    if (status === 404 || envelope.errors?.some((e) => e.code === 5404)) return "not-found";
    if (status >= 300 || envelope.success === false) fail("DELETE", path, status, envelope);
    return "deleted";
}

/** Upload by URL into the custom ID; returns the new image's delivery URLs. */
export async function uploadFromUrl(config: ImagesApiConfig, imageId: string, sourceUrl: string): Promise<string[]> {
    const path = imagePath(config);
    const form = new FormData();
    form.set("url", sourceUrl);
    form.set("id", imageId);
    const { status, envelope } = await call(config, "POST", path, form);
    if (status >= 300 || envelope.success === false) fail("POST", path, status, envelope);
    const result = envelope.result as { variants?: unknown } | undefined;
    return Array.isArray(result?.variants) ? result!.variants.filter((v): v is string => typeof v === "string") : [];
}
