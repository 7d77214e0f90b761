import * as http from "http";
import { AddressInfo } from "net";
import * as zlib from "zlib";

/** A loopback origin serving a distinct small PNG at every path, standing in for the old image CDN. */
export interface ImageOrigin {
    baseUrl: string;
    requests: number;
    close(): Promise<void>;
}

export async function startBenchImageOrigin(): Promise<ImageOrigin> {
    const origin = { baseUrl: "", requests: 0, close: async () => undefined } as ImageOrigin;
    const server = http.createServer((req, res) => {
        origin.requests++;
        const body = pngFor(req.url ?? "/");
        res.writeHead(200, { "content-type": "image/png", "content-length": body.length, etag: `"${crcOf(body)}"` });
        res.end(req.method === "HEAD" ? undefined : body);
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    origin.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    origin.close = () =>
        new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
        });
    return origin;
}

/** A valid 8x8 RGB PNG whose pixels depend on `seed`, so every path has its own bytes (and content hash). */
export function pngFor(seed: string): Buffer {
    const size = 8;
    let h = 2166136261;
    for (const ch of seed) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    const raw = Buffer.alloc(size * (1 + size * 3));
    for (let y = 0; y < size; y++) {
        const row = y * (1 + size * 3);
        for (let x = 0; x < size * 3; x++) {
            h = Math.imul(h ^ (x + y), 16777619) >>> 0;
            raw[row + 1 + x] = h & 0xff;
        }
    }
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(size, 0);
    ihdr.writeUInt32BE(size, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // colour type RGB
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        chunk("IHDR", ihdr),
        chunk("IDAT", zlib.deflateSync(raw)),
        chunk("IEND", Buffer.alloc(0)),
    ]);
}

function chunk(type: string, data: Buffer): Buffer {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const typeAndData = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crcOf(typeAndData));
    return Buffer.concat([len, typeAndData, crc]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
});

function crcOf(buf: Buffer): number {
    let c = 0xffffffff;
    for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}
