// Images a browser can decode, of a chosen pixel size, and the pixel size a file's header declares (PNG, JPEG, GIF).

/**
 * A baseline greyscale JPEG of width x height, every pixel mid-grey: one DC and one AC Huffman code ("0" each), so each
 * 8x8 block is two bits (DC difference 0, end of block).
 */
export function jpegOfSize(width: number, height: number): Buffer {
    const segment = (marker: number, body: number[]) => [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
    const oneCodeTable = (tableClass: number) => segment(0xc4, [tableClass << 4, 1, ...new Array(15).fill(0), 0x00]);
    const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
    const scan = Buffer.alloc(Math.ceil((blocks * 2) / 8));
    const padBits = scan.length * 8 - blocks * 2;
    if (padBits > 0) scan[scan.length - 1] = (1 << padBits) - 1; // the last byte is padded with 1 bits
    return Buffer.concat([
        Buffer.from([0xff, 0xd8]),
        Buffer.from(segment(0xdb, [0x00, ...new Array(64).fill(1)])), // quantisation table 0
        Buffer.from(segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0])), // baseline frame
        Buffer.from(oneCodeTable(0)),
        Buffer.from(oneCodeTable(1)),
        Buffer.from(segment(0xda, [1, 1, 0x00, 0, 63, 0])),
        scan,
        Buffer.from([0xff, 0xd9]),
    ]);
}

/** The width and height a PNG, JPEG or GIF declares in its header; throws for anything else. */
export function pixelSize(bytes: Buffer): { width: number; height: number } {
    if (bytes.subarray(1, 4).toString("latin1") === "PNG" && bytes.subarray(12, 16).toString("latin1") === "IHDR") {
        return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
    }
    if (bytes.subarray(0, 3).toString("latin1").startsWith("GIF")) return { width: bytes.readUInt16LE(6), height: bytes.readUInt16LE(8) };
    if (bytes[0] === 0xff && bytes[1] === 0xd8) {
        for (let at = 2; at + 9 < bytes.length;) {
            if (bytes[at] !== 0xff) break;
            const marker = bytes[at + 1];
            // SOF0..SOF15 hold the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
            if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
                return { width: bytes.readUInt16BE(at + 7), height: bytes.readUInt16BE(at + 5) };
            }
            at += 2 + bytes.readUInt16BE(at + 2);
        }
    }
    throw new Error("pixelSize: not a PNG, JPEG or GIF with a readable header");
}
