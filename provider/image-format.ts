/**
 * Cloudflare Images' input rules, pure and free of Node built-ins so that the sources (Node) and the redirect
 * Worker (workerd) share one definition: the upload limit and what a file's first bytes say it is.
 */

/** Cloudflare Images' upload limit ("10 MB"), read as 10 MiB like the emulator. */
export const MAX_IMAGE_BYTES = 10 * 1024 * 1024;

/** How many leading bytes sniffImageType wants (an SVG root element can follow an XML prolog and comments). */
export const SNIFF_BYTES = 4096;

/** Input formats Cloudflare Images accepts (AVIF only on Enterprise plans, so not here). */
export const ACCEPTED_IMAGE_TYPES: ReadonlySet<string> = new Set([
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml", "image/heic", "image/heif",
]);

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const HEIC_BRANDS = ["heic", "heix", "hevc", "hevx", "heim", "heis"];
const SVG_START = /^(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*)*(?:<!DOCTYPE[^>]*>\s*)?(?:<!--[\s\S]*?-->\s*)*<svg[\s>/]/i;

/**
 * The image content type a file's first bytes announce (also formats Cloudflare refuses, such as TIFF or PSD, so
 * that they can be skipped with the right reason), or undefined when they match no image format.
 */
export function sniffImageType(bytes: Uint8Array): string | undefined {
    const latin1 = (start: number, end: number) => String.fromCharCode(...bytes.subarray(start, end));
    if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return "image/png";
    if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "image/jpeg";
    const head = latin1(0, 14);
    if (head.startsWith("GIF87a") || head.startsWith("GIF89a")) return "image/gif";
    if (head.startsWith("RIFF") && head.slice(8, 12) === "WEBP") return "image/webp";
    if (head.slice(4, 8) === "ftyp") {
        const brand = head.slice(8, 12);
        if (brand === "avif" || brand === "avis") return "image/avif";
        if (HEIC_BRANDS.includes(brand)) return "image/heic";
        if (brand === "mif1" || brand === "msf1") return "image/heif";
    }
    if (head.startsWith("II*\0") || head.startsWith("MM\0*")) return "image/tiff";
    if (head.startsWith("BM") && bytes.length >= 14) return "image/bmp";
    if (head.startsWith("8BPS")) return "image/vnd.adobe.photoshop";
    if (bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 1 && bytes[3] === 0) return "image/x-icon";
    const text = new TextDecoder().decode(bytes.subarray(0, SNIFF_BYTES)).replace(/^\uFEFF/, "").trimStart();
    if (SVG_START.test(text)) return "image/svg+xml";
    return undefined;
}
