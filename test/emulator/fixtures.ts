// Tiny valid image fixtures and a loopback origin that serves them, for tests across the project.
import * as http from "node:http";
import { once } from "node:events";
import type { AddressInfo, Socket } from "node:net";
import { crc32, deflateSync } from "node:zlib";

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A valid 1x1 RGB PNG; each seed gives different bytes (pixel colour and a tEXt chunk), so content hashes differ. */
export function pngBytes(seed = 0, size: { width: number; height: number } = { width: 1, height: 1 }): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size.width, 0);
  ihdr.writeUInt32BE(size.height, 4);
  ihdr.writeUInt8(8, 8); // bit depth
  ihdr.writeUInt8(2, 9); // colour type RGB
  const row = Buffer.alloc(1 + size.width * 3);
  for (let x = 0; x < size.width; x++) row.writeUIntBE((seed * 2654435761 + x) & 0xffffff, 1 + x * 3, 3);
  const raw = Buffer.concat(Array.from({ length: size.height }, () => row));
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk("IHDR", ihdr),
    pngChunk("tEXt", Buffer.from(`Comment\0seed ${seed}`, "latin1")),
    pngChunk("IDAT", deflateSync(raw)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/** A valid PNG padded with a private ancillary chunk to exactly `totalBytes` (e.g. just over 10 MB). */
export function pngOfSize(totalBytes: number, seed = 0): Buffer {
  const base = pngBytes(seed);
  const pad = totalBytes - base.length - 12;
  if (pad < 0) throw new Error(`pngOfSize: totalBytes must be at least ${base.length + 12}`);
  const iend = base.length - 12;
  return Buffer.concat([base.subarray(0, iend), pngChunk("prVt", Buffer.alloc(pad, seed & 0xff)), base.subarray(iend)]);
}

/** A PNG whose header declares width x height (the pixel data is not that large); for dimension-limit tests. */
export function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(8, 8);
  ihdr.writeUInt8(2, 9);
  return Buffer.concat([PNG_SIGNATURE, pngChunk("IHDR", ihdr), pngChunk("IEND", Buffer.alloc(0))]);
}

/** A JPEG (SOI + JFIF APP0 + a comment carrying the seed + EOI): enough for format sniffing. */
export function jpegBytes(seed = 0): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
  const text = Buffer.from(`seed ${seed}`, "latin1");
  const com = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, text.length + 2]), text]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, com, Buffer.from([0xff, 0xd9])]);
}

/** The classic 1x1 transparent GIF89a. */
export function gifBytes(): Buffer {
  return Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");
}

/** A 1x1 lossless WebP (RIFF....WEBPVP8L). */
export function webpBytes(): Buffer {
  return Buffer.from("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==", "base64");
}

export function svgBytes(seed = 0): Buffer {
  return Buffer.from(`<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><!-- ${seed} --><rect width="1" height="1"/></svg>\n`);
}

/** An ISO-BMFF `ftyp` box with the heic brand: enough for format sniffing. */
export function heicBytes(): Buffer {
  const ftyp = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from("ftypheic", "latin1"), Buffer.alloc(4), Buffer.from("mif1heic", "latin1")]);
  return Buffer.concat([ftyp, Buffer.alloc(16)]);
}

export interface OriginRoute {
  body: Buffer;
  contentType?: string;
  status?: number;
  /** Delay before answering, in ms (timeout tests). */
  delayMs?: number;
}

export interface ImageOrigin {
  /** "http://127.0.0.1:PORT" */
  baseUrl: string;
  /** Absolute URL of a path on this origin, e.g. url("/img/3.png"). */
  url(path: string): string;
  /** Serve `route` at `path` (exact pathname match; takes precedence over /img/<n>.png). */
  register(path: string, route: OriginRoute | Buffer): void;
  /** Total requests, and per pathname. */
  requests: number;
  requestsByPath: Map<string, number>;
  close(): Promise<void>;
}

/** A loopback HTTP origin: `/img/<n>.png` serves pngBytes(n); registered paths serve their bytes; anything else 404. */
export async function startImageOrigin(): Promise<ImageOrigin> {
  const routes = new Map<string, OriginRoute>();
  const sockets = new Set<Socket>();
  const origin: ImageOrigin = {
    baseUrl: "",
    url: (p) => `${origin.baseUrl}${p.startsWith("/") ? p : `/${p}`}`,
    register(p, route) {
      routes.set(p, Buffer.isBuffer(route) ? { body: route } : route);
    },
    requests: 0,
    requestsByPath: new Map(),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    origin.requests++;
    origin.requestsByPath.set(pathname, (origin.requestsByPath.get(pathname) ?? 0) + 1);
    const m = /^\/img\/(\d+)\.png$/.exec(pathname);
    const route = routes.get(pathname) ?? (m ? { body: pngBytes(Number(m[1])), contentType: "image/png" } : undefined);
    const answer = () => {
      if (!route) {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("not found");
        return;
      }
      res.writeHead(route.status ?? 200, { "content-type": route.contentType ?? "application/octet-stream", "content-length": String(route.body.length) });
      res.end(req.method === "HEAD" ? undefined : route.body);
    };
    if (route?.delayMs) setTimeout(answer, route.delayMs);
    else answer();
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  origin.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return origin;
}
