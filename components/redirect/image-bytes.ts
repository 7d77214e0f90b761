/**
 * What the Worker checks of a new source before it touches the current image (pure; runs in workerd and Node):
 * the upload limit and the image format (shared with the sources), and the source hash it records the way the
 * provider does.
 */
import { ACCEPTED_IMAGE_TYPES, sniffImageType } from "../../provider/image-format";

export { MAX_IMAGE_BYTES } from "../../provider/image-format";
export { METADATA_MAX_BYTES, metadataBytes, SOURCE_HASH_KEY } from "../../provider/source-metadata";

/** The content type of bytes in a format Cloudflare Images accepts (PNG, JPEG, GIF, WebP, SVG, HEIC/HEIF), else undefined. */
export function acceptedImageType(bytes: Uint8Array): string | undefined {
    const type = sniffImageType(bytes);
    return type !== undefined && ACCEPTED_IMAGE_TYPES.has(type) ? type : undefined;
}

/** The source hash the Worker records for bytes it uploads: `sha256:<hex>`. */
export async function sourceHashOf(bytes: Uint8Array): Promise<string> {
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return `sha256:${[...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}
