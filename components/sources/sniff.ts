/** The image content type that a file's first bytes announce, or undefined when they match no image format. */
export function sniffImageType(head: Buffer): string | undefined {
    const ascii = (start: number, end: number) => head.subarray(start, end).toString("latin1");
    if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "image/jpeg";
    if (head.length >= 8 && head.subarray(0, 8).equals(PNG)) return "image/png";
    if (ascii(0, 6) === "GIF87a" || ascii(0, 6) === "GIF89a") return "image/gif";
    if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image/webp";
    if (ascii(4, 8) === "ftyp") {
        const brand = ascii(8, 12);
        if (brand === "avif" || brand === "avis") return "image/avif";
        if (["heic", "heix", "hevc", "hevx", "heim", "heis"].includes(brand)) return "image/heic";
        if (brand === "mif1" || brand === "msf1") return "image/heif";
    }
    if (ascii(0, 4) === "II*\0" || ascii(0, 4) === "MM\0*") return "image/tiff";
    if (ascii(0, 2) === "BM" && head.length >= 14) return "image/bmp";
    if (ascii(0, 4) === "8BPS") return "image/vnd.adobe.photoshop";
    if (head.length >= 4 && head.readUInt32BE(0) === 0x00000100) return "image/x-icon";
    if (/<svg[\s>]/i.test(head.toString("utf8"))) return "image/svg+xml";
    return undefined;
}

/** How many leading bytes sniffImageType wants (an SVG root element can follow an XML prolog and comments). */
export const SNIFF_BYTES = 4096;

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
