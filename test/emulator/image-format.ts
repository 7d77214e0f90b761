// Image format sniffing from magic bytes, and the size/dimension limits of Cloudflare Images (pure).

export const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
export const MAX_DIMENSION = 12_000;
export const MAX_MEGAPIXELS = 100;

export type ImageFormat = "png" | "jpeg" | "gif" | "webp" | "svg" | "heic";

export const contentTypes: Record<ImageFormat, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  svg: "image/svg+xml",
  heic: "image/heic",
};

const HEIC_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]);
const SVG_START = /^(?:<\?xml[^>]*\?>\s*)?(?:<!--[\s\S]*?-->\s*)*(?:<!DOCTYPE[^>]*>\s*)?(?:<!--[\s\S]*?-->\s*)*<svg[\s>/]/i;

/** The accepted format of `bytes`, or undefined when it is none of PNG, JPEG, GIF, WebP, SVG, HEIC (AVIF is Enterprise-only). */
export function sniffImageFormat(bytes: Buffer): ImageFormat | undefined {
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  const head = bytes.subarray(0, 12).toString("latin1");
  if (head.startsWith("GIF87a") || head.startsWith("GIF89a")) return "gif";
  if (head.startsWith("RIFF") && head.slice(8, 12) === "WEBP") return "webp";
  if (head.slice(4, 8) === "ftyp" && HEIC_BRANDS.has(head.slice(8, 12))) return "heic";
  const text = bytes.subarray(0, 4096).toString("utf8").replace(/^\uFEFF/, "").trimStart();
  if (SVG_START.test(text)) return "svg";
  return undefined;
}

/** Width and height where the header states them cheaply (PNG, GIF); undefined otherwise. */
export function imageDimensions(bytes: Buffer, format: ImageFormat): { width: number; height: number } | undefined {
  if (format === "png" && bytes.length >= 24 && bytes.subarray(12, 16).toString("latin1") === "IHDR") {
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }
  if (format === "gif" && bytes.length >= 10) return { width: bytes.readUInt16LE(6), height: bytes.readUInt16LE(8) };
  return undefined;
}

/** A message naming the broken limit, or undefined when the image is within the documented limits. */
export function dimensionProblem(bytes: Buffer, format: ImageFormat): string | undefined {
  const dims = imageDimensions(bytes, format);
  if (!dims) return undefined;
  if (dims.width > MAX_DIMENSION || dims.height > MAX_DIMENSION) {
    return `Image dimensions ${dims.width}x${dims.height} exceed the maximum of ${MAX_DIMENSION} px per side`;
  }
  if (dims.width * dims.height > MAX_MEGAPIXELS * 1_000_000) {
    return `Image area ${dims.width}x${dims.height} exceeds the maximum of ${MAX_MEGAPIXELS} megapixels`;
  }
  return undefined;
}
