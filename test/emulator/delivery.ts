// Image delivery, as a zone's `/cdn-cgi/imagedelivery/<hash>/<id>/<variant>` (or imagedelivery.net) answers it:
// the stored bytes of a known variant, no token, no rate limit. Variants are not resized: every variant is the original.
import type { ImagesContext } from "./images-routes";
import type { EmuResponse } from "./envelope";
import { contentTypes, sniffImageFormat } from "./image-format";

export const DELIVERY_PREFIX = "/cdn-cgi/imagedelivery";

/** Cloudflare Images' default browser TTL (2 days). */
export const DELIVERY_CACHE_CONTROL = "public, max-age=172800";

export interface DeliveryPath {
  hash: string;
  imageId: string;
  variant: string;
}

/**
 * `<hash>/<id...>/<variant>` of a raw request path below DELIVERY_PREFIX; the ID may hold `/` and is percent-decoded
 * (a `%` in an ID is sent as `%25`). Undefined when the path has too few segments or a malformed escape.
 */
export function parseDeliveryPath(rawPath: string): DeliveryPath | undefined {
  const pathOnly = rawPath.split("?")[0];
  if (!pathOnly.startsWith(`${DELIVERY_PREFIX}/`)) return undefined;
  const segments = pathOnly.slice(DELIVERY_PREFIX.length + 1).split("/");
  if (segments.length < 3 || segments.some((s) => s === "")) return undefined;
  const hash = segments[0];
  const variant = segments[segments.length - 1];
  try {
    return { hash: decodeURIComponent(hash), imageId: decodeURIComponent(segments.slice(1, -1).join("/")), variant: decodeURIComponent(variant) };
  } catch {
    return undefined;
  }
}

function text(status: number, message: string): EmuResponse {
  return { status, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }, body: `${message}\n` };
}

/** The answer to GET or HEAD of `rawPath` (the request target as sent, query included). */
export function deliverImage(ctx: ImagesContext, rawPath: string): EmuResponse {
  const target = parseDeliveryPath(rawPath);
  if (!target) return text(404, "Not found: expected /cdn-cgi/imagedelivery/<account hash>/<image id>/<variant>");
  if (target.hash !== ctx.accountHash) return text(404, `Not found: unknown account hash "${target.hash}"`);
  if (!ctx.variants.includes(target.variant)) return text(404, `Not found: unknown variant "${target.variant}" (variants: ${ctx.variants.join(", ")})`);
  const img = ctx.images.get(target.imageId);
  if (!img) return text(404, `Not found: no image "${target.imageId}"`);
  // Signed URLs (exp/sig with the account's signing key) are not emulated: such an image is never delivered.
  if (img.requireSignedURLs) return text(403, `Forbidden: image "${target.imageId}" requires a signed URL, which the emulator does not verify`);
  const format = sniffImageFormat(img.bytes);
  return {
    status: 200,
    headers: {
      "content-type": format ? contentTypes[format] : img.contentType,
      "content-length": String(img.bytes.length),
      "cache-control": DELIVERY_CACHE_CONTROL,
    },
    body: img.bytes,
  };
}
