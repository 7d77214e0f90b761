import type * as pulumi from "@pulumi/pulumi";
import { DEFAULT_API_BASE_URL, UNKNOWN } from "./image-inputs";

/**
 * Inputs whose change means a different image: the old one goes, a new one is uploaded. Where the bytes come from
 * (`url`, `filePath`) is not among them: the same source hash means the same bytes, so a moved checkout, a new
 * public base URL or a bucket made private must not delete and re-upload every image.
 */
export const REPLACE_KEYS = ["accountId", "imageId", "sourceHash"] as const;
/**
 * Inputs changed in place: metadata and access by PATCH; credentials, endpoint and the source's location with no
 * API call at all.
 */
export const UPDATE_KEYS = ["metadata", "requireSignedURLs", "apiToken", "apiBaseUrl", "url", "filePath"] as const;

// Absent and default mean the same image, so they must not show up as a change.
const DEFAULTS: Record<string, unknown> = { requireSignedURLs: false, metadata: {}, apiBaseUrl: DEFAULT_API_BASE_URL };

/** JSON with object keys sorted, so key order is never a change. */
export function canonical(value: unknown): string {
    if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
    if (value && typeof value === "object") {
        const entries = Object.entries(value)
            .filter(([, v]) => v !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : 1));
        return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
    }
    return JSON.stringify(value ?? null);
}

function changed(key: string, olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
    if (news[key] === UNKNOWN) return true;
    const norm = (v: unknown) => canonical(v ?? DEFAULTS[key]);
    return norm(olds[key]) !== norm(news[key]);
}

/** The owner tag moved (an aliased rename): the image's metadata must name the new owner. Absent before = legacy. */
function ownerChanged(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
    return typeof olds.owner === "string" && olds.owner !== news.owner && news.owner !== UNKNOWN;
}

/**
 * Compares stored outputs with new inputs, with no I/O. `__provider` (the serialized shim) is never compared, so a
 * new build of the provider code is no change; onConflict and s3 only steer a create and are not compared either.
 */
export function diffImage(olds: Record<string, unknown>, news: Record<string, unknown>): pulumi.dynamic.DiffResult {
    const replaces = REPLACE_KEYS.filter((k) => changed(k, olds, news));
    const updates = UPDATE_KEYS.filter((k) => changed(k, olds, news));
    if (replaces.length > 0) {
        // The same custom ID cannot exist twice, so the old image must go before the new upload.
        const sameId = !changed("accountId", olds, news) && !changed("imageId", olds, news);
        return { changes: true, replaces: [...replaces], deleteBeforeReplace: sameId };
    }
    return { changes: updates.length > 0 || ownerChanged(olds, news) };
}

/** What an update must PATCH; neither when only the token or the API endpoint moved (no API call then). */
export function needsPatch(olds: Record<string, unknown>, news: Record<string, unknown>): { metadata: boolean; requireSignedURLs: boolean } {
    return { metadata: changed("metadata", olds, news) || ownerChanged(olds, news), requireSignedURLs: changed("requireSignedURLs", olds, news) };
}
