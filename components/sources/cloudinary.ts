import axios from "axios";
import { z } from "zod";
import { CloudinarySource } from "./schema";
import { ImageSource, SourceContext, SourceImage, sourceError } from "./types";

const DEFAULT_API_BASE_URL = "https://api.cloudinary.com";
const PAGE_SIZE = 500;
const MAX_ATTEMPTS = 4;
const TIMEOUT_MS = 30_000;

const resourceSchema = z.looseObject({
    public_id: z.string().min(1),
    format: z.string().optional(),
    bytes: z.number().optional(),
    secure_url: z.string().url(),
    etag: z.string().optional(),
    type: z.string().optional(),
});
const pageSchema = z.looseObject({
    resources: z.array(resourceSchema),
    next_cursor: z.string().nullish(),
});

type Resource = z.infer<typeof resourceSchema>;

/**
 * Cloudinary image assets of delivery type `upload` (the publicly fetchable ones), listed through the Admin API
 * (`GET /v1_1/<cloud>/resources/image/upload`, 500 a page, all pages by `next_cursor`, basic auth key:secret).
 * Cloudflare fetches each `secure_url`; both the versioned and the version-less URL redirect to the new image.
 */
export function cloudinarySource(source: CloudinarySource, context: SourceContext): ImageSource {
    return {
        async *list() {
            let cursor: string | undefined;
            do {
                const page = await fetchPage(source, context, cursor);
                for (const resource of page.resources) yield imageFromResource(resource);
                cursor = page.next_cursor ?? undefined;
            } while (cursor);
        },
    };
}

function imageFromResource(resource: Resource): SourceImage {
    const key = resource.format ? `${resource.public_id}.${resource.format}` : resource.public_id;
    const versionless = resource.secure_url.replace(/\/upload\/v\d+\//, "/upload/");
    return {
        key,
        url: resource.secure_url,
        ...(resource.bytes !== undefined ? { size: resource.bytes } : {}),
        // Versions are upload timestamps, not content: only an etag may merge two assets as duplicates.
        ...(resource.etag ? { contentHash: resource.etag.replace(/"/g, "") } : {}),
        oldUrls: versionless === resource.secure_url ? [resource.secure_url] : [resource.secure_url, versionless],
    };
}

async function fetchPage(source: CloudinarySource, context: SourceContext, cursor: string | undefined): Promise<z.infer<typeof pageSchema>> {
    const { configPath } = context;
    const base = (source.apiBaseUrl ?? DEFAULT_API_BASE_URL).replace(/\/+$/, "");
    const url = `${base}/v1_1/${encodeURIComponent(source.cloudName)}/resources/image/upload`;
    const params = { max_results: PAGE_SIZE, ...(source.prefix ? { prefix: source.prefix } : {}), ...(cursor ? { next_cursor: cursor } : {}) };
    for (let attempt = 1; ; attempt++) {
        let response;
        try {
            response = await axios.get(url, {
                params,
                auth: { username: source.apiKey, password: source.apiSecret },
                timeout: TIMEOUT_MS,
                validateStatus: () => true,
                responseType: "json",
            });
        } catch (error) {
            // Report only the code: axios errors carry the request config, credentials included.
            const code = (error as { code?: string }).code ?? "network error";
            if (attempt < MAX_ATTEMPTS) {
                await delay(attempt);
                continue;
            }
            throw sourceError(configPath, "cloudName", `cannot reach the Cloudinary Admin API at ${base} (${code})`);
        }
        const { status, data } = response;
        if (status === 200) {
            const page = pageSchema.safeParse(data);
            if (!page.success) {
                throw sourceError(configPath, undefined, `unexpected Cloudinary listing response from ${base}: ${page.error.issues[0].message} at ${page.error.issues[0].path.join(".")}`);
            }
            return page.data;
        }
        const detail = cloudinaryMessage(data, [source.apiKey, source.apiSecret]);
        if (status === 401) {
            throw sourceError(
                configPath,
                "apiKey",
                `Cloudinary rejected the API key and secret for cloud "${source.cloudName}" (HTTP 401${detail}): ` +
                    `check ${configPath}.apiKey and ${configPath}.apiSecret (the key/secret pair on the console's API Keys page)`,
            );
        }
        if (status === 403) {
            throw sourceError(configPath, "apiKey", `Cloudinary refused the Admin API listing for cloud "${source.cloudName}" (HTTP 403${detail}): give ${configPath}.apiKey a role that may list assets`);
        }
        if (status === 404) {
            throw sourceError(configPath, "cloudName", `Cloudinary knows no cloud "${source.cloudName}" (HTTP 404${detail}): check ${configPath}.cloudName`);
        }
        if ((status === 420 || status === 429 || status >= 500) && attempt < MAX_ATTEMPTS) {
            await delay(attempt);
            continue;
        }
        throw sourceError(configPath, undefined, `Cloudinary listing failed for cloud "${source.cloudName}" (HTTP ${status}${detail})`);
    }
}

function cloudinaryMessage(data: unknown, secrets: string[]): string {
    const message = (data as { error?: { message?: unknown } } | undefined)?.error?.message;
    if (typeof message !== "string") return "";
    let text = message.slice(0, 300);
    for (const secret of secrets) if (secret) text = text.split(secret).join("[secret]");
    return `: ${text}`;
}

function delay(attempt: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.min(8_000, 250 * 2 ** attempt * Math.random())));
}
