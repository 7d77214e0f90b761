/**
 * What the Worker checks of a new source before it touches the current image (pure; runs in workerd and Node):
 * the upload limit, image sniffing by magic bytes, and the source hash recorded in the image's metadata.
 */

/** Cloudflare Images' upload limit ("10 MB"), read as 10 MiB like the provider and the emulator. */
export const MAX_IMAGE_BYTES = 10 * 1024 * 1024;

/** The provider's reserved metadata key for the source hash (provider/source-metadata.ts SOURCE_HASH_KEY). */
export const SOURCE_HASH_KEY = "_skh";

/** Cloudflare Images stores at most this many bytes of metadata per image (its JSON text). */
export const METADATA_MAX_BYTES = 1024;

const HEIC_BRANDS = ["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"];
const SVG_START = /^(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*)*(?:<!DOCTYPE[^>]*>\s*)?(?:<!--[\s\S]*?-->\s*)*<svg[\s>/]/i;

/** The content type of an image format Cloudflare Images accepts (PNG, JPEG, GIF, WebP, SVG, HEIC), from its first bytes. */
export function sniffImageType(bytes: Uint8Array): string | undefined {
    const latin1 = (start: number, end: number) => String.fromCharCode(...bytes.subarray(start, end));
    if (bytes.length >= 8 && [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((b, i) => bytes[i] === b)) return "image/png";
    if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "image/jpeg";
    const head = latin1(0, 12);
    if (head.startsWith("GIF87a") || head.startsWith("GIF89a")) return "image/gif";
    if (head.startsWith("RIFF") && head.slice(8, 12) === "WEBP") return "image/webp";
    if (head.slice(4, 8) === "ftyp" && HEIC_BRANDS.includes(head.slice(8, 12))) return "image/heic";
    const text = new TextDecoder().decode(bytes.subarray(0, 4096)).replace(/^\uFEFF/, "").trimStart();
    if (SVG_START.test(text)) return "image/svg+xml";
    return undefined;
}

/** The source hash the Worker records for bytes it uploads: `sha256:<hex>`. */
export async function sourceHashOf(bytes: Uint8Array): Promise<string> {
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return `sha256:${[...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Size in bytes of metadata as Cloudflare counts it (its JSON text). */
export function metadataBytes(meta: Record<string, unknown>): number {
    return new TextEncoder().encode(JSON.stringify(meta)).length;
}
