// The Images API handlers: upload, details, edit, delete, blob, stats, lists (v1, v2) and the batch token.
import type { IncomingMessage } from "node:http";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { badRequest, CfError, codes, imageNotFound, messages, ok, type EmuResponse } from "./envelope";
import { contentTypes, dimensionProblem, sniffImageFormat } from "./image-format";
import { customIdProblem, generateImageId, isUuid } from "./image-id";
import { compareImages, imageJson, sortedImages, UploadClock, type StoredImage } from "./image-store";
import { bracketedObject, readUploadForm } from "./multipart";
import { readJsonBody } from "./request-body";
import { fetchImageUrl } from "./url-fetch";

export const MAX_METADATA_BYTES = 1024;
const MAX_FILENAME = 255;
const MAX_CURSORS = 10_000;

export interface ImagesContext {
  images: Map<string, StoredImage>;
  accountHash: string;
  variants: string[];
  fetchTimeoutMs: number;
  allowedImages: number;
  batchTokenTtlSeconds: number;
  clock: UploadClock;
  cursors: CursorStore;
  batchTokens: Map<string, number>;
  /** Called after a write took effect (counters, persistence). */
  written(kind: "upload" | "patch" | "delete"): void;
}

interface Cursor {
  order: "asc" | "desc";
  after: StoredImage;
  creator?: string;
}

/** Opaque v2 continuation tokens (32 hex chars) mapped to the last image of the page they continue. */
export class CursorStore {
  private readonly cursors = new Map<string, Cursor>();

  issue(cursor: Cursor): string {
    const token = randomBytes(16).toString("hex");
    this.cursors.set(token, cursor);
    if (this.cursors.size > MAX_CURSORS) this.cursors.delete(this.cursors.keys().next().value as string);
    return token;
  }

  get(token: string): Cursor | undefined {
    return this.cursors.get(token);
  }
}

const view = (ctx: ImagesContext, img: StoredImage) => imageJson(img, ctx.accountHash, ctx.variants);

function findImage(ctx: ImagesContext, id: string): StoredImage {
  const img = ctx.images.get(id);
  if (!img) throw imageNotFound();
  return img;
}

export function checkMetadata(meta: unknown, field = "metadata"): Record<string, unknown> {
  if (meta === null || typeof meta !== "object" || Array.isArray(meta)) throw badRequest(`${field} must be a JSON object`);
  const size = Buffer.byteLength(JSON.stringify(meta));
  if (size > MAX_METADATA_BYTES) throw badRequest(`${field} must be at most ${MAX_METADATA_BYTES} bytes of JSON (got ${size})`);
  return meta as Record<string, unknown>;
}

function formMetadata(fields: Map<string, string>): Record<string, unknown> {
  const raw = fields.get("metadata");
  const bracketed = bracketedObject(fields, "metadata");
  if (raw !== undefined && bracketed) throw badRequest("metadata: send either a JSON string or bracketed metadata[key] fields, not both");
  if (bracketed) return checkMetadata(bracketed);
  if (raw === undefined || raw === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw badRequest("metadata must be a JSON object encoded as a string");
  }
  return checkMetadata(parsed);
}

function formBoolean(value: string | undefined, field: string): boolean {
  if (value === undefined || value === "") return false;
  const v = value.toLowerCase();
  if (v === "true") return true;
  if (v === "false") return false;
  throw badRequest(`${field} must be "true" or "false" (got "${value}")`);
}

function exists(): CfError {
  return new CfError(409, codes.exists, messages.exists);
}

export async function uploadImage(ctx: ImagesContext, req: IncomingMessage): Promise<EmuResponse> {
  const form = await readUploadForm(req);
  const url = form.fields.get("url");
  if (form.fileParts > 1) throw badRequest("Send exactly one file part named file");
  if (form.file && url !== undefined) throw badRequest("Send either file or url, not both");
  if (!form.file && (url === undefined || url === "")) throw badRequest("Send a file or a url to upload");

  const customId = form.fields.get("id");
  if (customId !== undefined) {
    const problem = customIdProblem(customId);
    if (problem) throw badRequest(problem);
  }
  const requireSignedURLs = formBoolean(form.fields.get("requireSignedURLs"), "requireSignedURLs");
  if (customId !== undefined && requireSignedURLs) {
    throw badRequest("Images with a custom ID cannot require signed URLs (requireSignedURLs=true)");
  }
  const meta = formMetadata(form.fields);
  const creator = form.fields.get("creator");
  if (creator !== undefined && creator.length > 1024) throw badRequest("creator must be at most 1024 characters");
  if (customId !== undefined && ctx.images.has(customId)) throw exists();

  const source = form.file
    ? { bytes: form.file.bytes, filename: form.file.filename ?? "" }
    : await fetchImageUrl(url as string, ctx.fetchTimeoutMs);
  const format = sniffImageFormat(source.bytes);
  if (!format) {
    throw new CfError(415, codes.unsupportedFormat, "Unsupported image format: upload a PNG, JPEG, GIF, WebP, SVG or HEIC image");
  }
  const tooBig = dimensionProblem(source.bytes, format);
  if (tooBig) throw badRequest(tooBig);

  const id = customId ?? generateImageId();
  if (ctx.images.has(id)) throw exists(); // a concurrent upload of the same ID won while the URL was fetched
  const img: StoredImage = {
    id,
    filename: source.filename.slice(0, MAX_FILENAME),
    meta,
    requireSignedURLs,
    uploaded: ctx.clock.next(),
    bytes: source.bytes,
    contentType: contentTypes[format],
    ...(creator !== undefined ? { creator } : {}),
    ...(url !== undefined ? { sourceUrl: url } : {}),
  };
  ctx.images.set(id, img);
  ctx.written("upload");
  return ok(view(ctx, img));
}

export function getImage(ctx: ImagesContext, id: string): EmuResponse {
  return ok(view(ctx, findImage(ctx, id)));
}

export function getBlob(ctx: ImagesContext, id: string): EmuResponse {
  const img = findImage(ctx, id);
  return { status: 200, headers: { "content-type": img.contentType }, body: img.bytes };
}

const PatchSchema = z.object({
  metadata: z.unknown().optional(),
  requireSignedURLs: z.boolean().optional(),
  creator: z.string().max(1024).optional(),
});

export async function patchImage(ctx: ImagesContext, id: string, req: IncomingMessage): Promise<EmuResponse> {
  const body = PatchSchema.safeParse(await readJsonBody(req, 64 * 1024));
  if (!body.success) {
    throw badRequest(`Invalid body: ${body.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`);
  }
  const img = findImage(ctx, id);
  const meta = body.data.metadata === undefined ? undefined : checkMetadata(body.data.metadata);
  if (body.data.requireSignedURLs && !isUuid(id)) {
    throw badRequest("Images with a custom ID cannot require signed URLs (requireSignedURLs=true)");
  }
  const updated: StoredImage = {
    ...img,
    ...(meta !== undefined ? { meta } : {}),
    ...(body.data.requireSignedURLs !== undefined ? { requireSignedURLs: body.data.requireSignedURLs } : {}),
    ...(body.data.creator !== undefined ? { creator: body.data.creator } : {}),
  };
  ctx.images.set(id, updated);
  ctx.written("patch");
  return ok(view(ctx, updated));
}

export function deleteImage(ctx: ImagesContext, id: string): EmuResponse {
  findImage(ctx, id);
  ctx.images.delete(id);
  ctx.written("delete");
  return ok({});
}

export function stats(ctx: ImagesContext): EmuResponse {
  return ok({ count: { current: ctx.images.size, allowed: ctx.allowedImages } });
}

export function batchToken(ctx: ImagesContext, now = Date.now()): EmuResponse {
  const token = randomBytes(24).toString("base64url");
  const expiresAt = now + ctx.batchTokenTtlSeconds * 1000;
  ctx.batchTokens.set(token, expiresAt);
  return ok({ token, expiresAt: new Date(expiresAt).toISOString() });
}

function perPage(query: URLSearchParams, fallback: number): number {
  const raw = query.get("per_page");
  if (raw === null || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 10 || n > 10_000) throw badRequest(`per_page must be an integer from 10 to 10000 (got "${raw}")`);
  return n;
}

function sortOrder(query: URLSearchParams): "asc" | "desc" {
  const raw = query.get("sort_order") ?? "desc";
  if (raw !== "asc" && raw !== "desc") throw badRequest(`sort_order must be asc or desc (got "${raw}")`);
  return raw;
}

function byCreator(images: StoredImage[], creator: string | undefined): StoredImage[] {
  if (creator === undefined) return images;
  return images.filter((img) => (creator === "" ? img.creator === undefined || img.creator === "" : img.creator === creator));
}

/** GET images/v2: continuation-token pages, newest first by default. */
export function listV2(ctx: ImagesContext, query: URLSearchParams): EmuResponse {
  for (const key of query.keys()) {
    if (key.startsWith("meta.")) throw badRequest(`Metadata filters (${key}) are not supported by the emulator`);
  }
  const size = perPage(query, 1000);
  const token = query.get("continuation_token");
  let order = sortOrder(query);
  let creator = query.get("creator") ?? undefined;
  let after: StoredImage | undefined;
  if (token) {
    const cursor = ctx.cursors.get(token);
    if (!cursor) throw badRequest(`continuation_token "${token}" is invalid or expired; start the listing again without it`);
    ({ order, after, creator } = { order: cursor.order, after: cursor.after, creator: cursor.creator });
  }
  let list = byCreator(sortedImages(ctx.images.values(), order), creator);
  if (after) {
    const last = after;
    list = list.filter((img) => (order === "asc" ? compareImages(img, last) > 0 : compareImages(img, last) < 0));
  }
  const page = list.slice(0, size);
  const next = list.length > size ? ctx.cursors.issue({ order, after: page[page.length - 1], creator }) : null;
  return ok({ continuation_token: next, images: page.map((img) => view(ctx, img)) });
}

/** GET images/v1 (deprecated): page-numbered, newest first. */
export function listV1(ctx: ImagesContext, query: URLSearchParams): EmuResponse {
  const size = perPage(query, 1000);
  const pageRaw = query.get("page") ?? "1";
  const page = Number(pageRaw);
  if (!Number.isInteger(page) || page < 1) throw badRequest(`page must be an integer of at least 1 (got "${pageRaw}")`);
  const list = byCreator(sortedImages(ctx.images.values(), "desc"), query.get("creator") ?? undefined);
  const items = list.slice((page - 1) * size, page * size);
  return ok(
    { images: items.map((img) => view(ctx, img)) },
    { result_info: { page, per_page: size, count: items.length, total_count: list.length } },
  );
}
