// Fetches the source of a `url` upload the way Cloudflare does: a real GET with a timeout and the 10 MB limit.
import { CfError, codes } from "./envelope";
import { MAX_IMAGE_BYTES } from "./image-format";
import { tooLarge } from "./multipart";

export interface FetchedImage {
  bytes: Buffer;
  filename: string;
}

export async function fetchImageUrl(url: string, timeoutMs: number): Promise<FetchedImage> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CfError(400, codes.badRequest, `url must be an absolute http(s) URL (got "${url}")`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new CfError(400, codes.badRequest, `url must use http or https (got "${parsed.protocol}")`);
  }
  const headers: Record<string, string> = {};
  if (parsed.username || parsed.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString("base64")}`;
    parsed.username = "";
    parsed.password = "";
  }
  let res: Response;
  try {
    res = await fetch(parsed, { headers, redirect: "follow", signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const reason = (err as Error).name === "TimeoutError" ? `timed out after ${timeoutMs} ms` : ((err as Error).cause as Error)?.message ?? (err as Error).message;
    throw new CfError(400, codes.badRequest, `Failed to fetch the image from url: ${reason}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new CfError(400, codes.badRequest, `Failed to fetch the image from url: the origin answered HTTP ${res.status}`);
  }
  const bytes = await readLimited(res, timeoutMs);
  const filename = decodeURIComponent(parsed.pathname.split("/").filter(Boolean).pop() ?? "") || parsed.hostname;
  return { bytes, filename };
}

async function readLimited(res: Response, timeoutMs: number): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > MAX_IMAGE_BYTES) {
    await res.body?.cancel();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_IMAGE_BYTES) {
        await reader.cancel();
        throw tooLarge();
      }
      chunks.push(Buffer.from(value));
    }
  } catch (err) {
    if (err instanceof CfError) throw err;
    throw new CfError(400, codes.badRequest, `Failed to fetch the image from url: ${(err as Error).message} (timeout ${timeoutMs} ms)`);
  }
  return Buffer.concat(chunks);
}
