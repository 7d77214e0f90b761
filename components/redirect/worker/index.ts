/**
 * The redirect Worker: old image URLs answer 301 to their Cloudflare Images delivery URL, looked up in D1 by the
 * normalised path (provider/redirect/paths.ts) and cached with the Cache API; signed webhooks re-import or
 * delete images. Sections: Types / Queries / Routes / Entrypoint.
 */
import { redirectKey } from "../../../provider/redirect/paths";
import { redirectLocation } from "../../../provider/redirect/delivery-url";
import { cloudinaryFallback } from "../cloudinary";
import { originTarget } from "../origin-url";
import { checkSignature, MAX_SKEW_SECONDS } from "./signature";
import { deleteImage, ImagesApiConfig, ImagesApiError } from "./images-api";
import { EventRefused, reimportImage, ReimportFailed } from "./reimport";
import { declaredOver, readAtMost } from "./read-body";

// ---------------------------------------------------------------- Types
// (Only functions and the default handler may be exported: workerd treats every export as an entrypoint.)

export interface Env {
    DB: D1Database;
    /** "origin": unmapped paths are fetched from ORIGIN_URL; "404" (default without ORIGIN_URL): not found. */
    FALLBACK?: string;
    ORIGIN_URL?: string;
    /** "true": carry old-CDN resize queries over to a flexible variant; otherwise queries are dropped. */
    FLEXIBLE_VARIANTS?: string;
    /** "true": rows are keyed `host/path`. */
    MATCH_HOST?: string;
    /** Seconds a found lookup stays in the edge cache (default 300); misses stay NEGATIVE_CACHE_TTL (default 60). */
    CACHE_TTL?: string;
    NEGATIVE_CACHE_TTL?: string;
    /** Lookups kept in isolate memory (default 10000, 0 disables), for at most min(CACHE_TTL, 60) seconds. */
    MEMORY_CACHE_ENTRIES?: string;
    /** Cache-Control max-age of the 301 itself (default 86400). */
    REDIRECT_MAX_AGE?: string;
    WEBHOOK_PATH?: string;
    WEBHOOK_SECRET?: string;
    IMAGES_API_BASE?: string;
    IMAGES_API_TOKEN?: string;
    ACCOUNT_ID?: string;
}

const DEFAULT_WEBHOOK_PATH = "/_sourcing-kit/webhook";
const DEFAULT_IMAGES_API_BASE = "https://api.cloudflare.com/client/v4";
const MAX_WEBHOOK_BODY_BYTES = 64 * 1024;

/** Where a lookup was answered: `cache` (layer `memory`: this isolate, `edge`: the colo's Cache API) or `d1`. */
interface Lookup { location: string | null; source: "cache" | "d1"; layer?: "memory" | "edge" }

interface WebhookEvent { type: "image.updated" | "image.deleted"; imageId: string; sourceUrl?: string; oldPath?: string }

/** Header-safe form of a stored URL (non-ASCII percent-encoded), as Location and cache headers need bytes. */
function href(location: string): string {
    try {
        return new URL(location).href;
    } catch {
        return encodeURI(location);
    }
}

const seconds = (value: string | undefined, fallback: number): number =>
    value !== undefined && /^\d+$/.test(value) ? Number(value) : fallback;

// ---------------------------------------------------------------- Queries

/** The delivery URL stored for a key: one prepared statement on the primary key. */
export async function findLocation(env: Env, key: string): Promise<string | null> {
    return env.DB.prepare("SELECT location FROM redirects WHERE path = ?1").bind(key).first<string>("location");
}

export async function findPathsOfImage(env: Env, imageId: string): Promise<{ path: string; location: string }[]> {
    const { results } = await env.DB.prepare("SELECT path, location FROM redirects WHERE image_id = ?1")
        .bind(imageId).all<{ path: string; location: string }>();
    return results;
}

/** Records a webhook signature; false when it was already seen (a replay). Expired records are dropped first. */
export async function recordWebhookEvent(env: Env, id: string, nowSeconds: number): Promise<boolean> {
    const [, inserted] = await env.DB.batch([
        env.DB.prepare("DELETE FROM webhook_events WHERE expires_at < ?1").bind(nowSeconds),
        env.DB.prepare("INSERT INTO webhook_events (id, expires_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING")
            .bind(id, nowSeconds + 2 * MAX_SKEW_SECONDS + 60),
    ]);
    return inserted.meta.changes === 1;
}

/**
 * Raises the image's high-water mark to `ts`; false (nothing changed) when an event as new or newer was accepted.
 * Returns the previous mark too, so a failed delivery can put it back and stay retryable.
 */
export async function advanceImageMark(env: Env, imageId: string, ts: number): Promise<{ advanced: boolean; previous: number | null }> {
    const [before, upsert] = await env.DB.batch([
        env.DB.prepare("SELECT ts FROM webhook_image_marks WHERE image_id = ?1").bind(imageId),
        env.DB.prepare("INSERT INTO webhook_image_marks (image_id, ts) VALUES (?1, ?2) " +
            "ON CONFLICT (image_id) DO UPDATE SET ts = excluded.ts WHERE excluded.ts > webhook_image_marks.ts").bind(imageId, ts),
    ]);
    const previous = (before.results[0] as { ts?: number } | undefined)?.ts ?? null;
    return { advanced: upsert.meta.changes === 1, previous };
}

/** Undoes advanceImageMark for a delivery that was not applied (only if no newer event moved the mark since). */
export async function restoreImageMark(env: Env, imageId: string, ts: number, previous: number | null): Promise<void> {
    if (previous === null) {
        await env.DB.prepare("DELETE FROM webhook_image_marks WHERE image_id = ?1 AND ts = ?2").bind(imageId, ts).run();
    } else {
        await env.DB.prepare("UPDATE webhook_image_marks SET ts = ?3 WHERE image_id = ?1 AND ts = ?2").bind(imageId, ts, previous).run();
    }
}

/**
 * Seconds a delivery holds its image's lease: longer than the slowest re-import the retry budgets allow (source fetch
 * 30 s, four Images API calls of at most 20 s each, a 30 s restore, the batch token: about 160 s), so a live delivery
 * never loses it, and short enough that a delivery whose invocation died holding it can be retried in the 5-minute
 * signature window.
 */
const LEASE_SECONDS = 180;

/**
 * Takes the image's lease for `holder` unless another delivery holds an unexpired one; returns when the current lease
 * ends either way (unix seconds).
 */
export async function acquireImageLease(env: Env, imageId: string, holder: string, nowSeconds: number): Promise<{ acquired: boolean; expiresAt: number }> {
    const [taken, current] = await env.DB.batch([
        env.DB.prepare("INSERT INTO webhook_image_leases (image_id, holder, expires_at) VALUES (?1, ?2, ?3) " +
            "ON CONFLICT (image_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at " +
            "WHERE webhook_image_leases.expires_at <= ?4").bind(imageId, holder, nowSeconds + LEASE_SECONDS, nowSeconds),
        env.DB.prepare("SELECT expires_at FROM webhook_image_leases WHERE image_id = ?1").bind(imageId),
    ]);
    const expiresAt = (current.results[0] as { expires_at?: number } | undefined)?.expires_at ?? nowSeconds;
    return { acquired: taken.meta.changes === 1, expiresAt };
}

/** Gives the lease back (only if `holder` still holds it). */
export async function releaseImageLease(env: Env, imageId: string, holder: string): Promise<void> {
    await env.DB.prepare("DELETE FROM webhook_image_leases WHERE image_id = ?1 AND holder = ?2").bind(imageId, holder).run();
}

export async function forgetWebhookEvent(env: Env, id: string): Promise<void> {
    await env.DB.prepare("DELETE FROM webhook_events WHERE id = ?1").bind(id).run();
}

/** Points `key` at `location`; a row owned by a RedirectRows shard keeps its owner. */
export async function upsertRow(env: Env, key: string, location: string, imageId: string): Promise<void> {
    await env.DB.prepare(
        "INSERT INTO redirects (path, location, image_id, shard, updated_at) VALUES (?1, ?2, ?3, 'webhook', unixepoch()) " +
        "ON CONFLICT (path) DO UPDATE SET location = excluded.location, image_id = excluded.image_id, updated_at = excluded.updated_at",
    ).bind(key, location, imageId).run();
}

export async function touchRowsOfImage(env: Env, imageId: string): Promise<void> {
    await env.DB.prepare("UPDATE redirects SET updated_at = unixepoch() WHERE image_id = ?1").bind(imageId).run();
}

export async function deleteRowsOfImage(env: Env, imageId: string): Promise<void> {
    await env.DB.prepare("DELETE FROM redirects WHERE image_id = ?1").bind(imageId).run();
}

// ---------------------------------------------------------------- Routes

/**
 * The cache entry of a key. A host-keyed row (MATCH_HOST: `host/path`) is cached under its own host, so a webhook
 * arriving on any host of the zone purges it; a path key under the host that asked. Always https, so a lookup over
 * http and a webhook over https meet the same entry.
 */
function cacheKey(url: URL, key: string): Request {
    const host = key.startsWith("/") ? url.host : key.slice(0, key.indexOf("/"));
    return new Request(`https://${host}/_sourcing-kit/lookup?key=${encodeURIComponent(key)}`);
}

// Per-isolate LRU in front of the Cache API: hot paths skip even the colo cache. Bounded in size and age.
const memory = new Map<string, { location: string | null; expires: number }>();
const MEMORY_MAX_SECONDS = 60;

function fromMemory(id: string, now: number): { location: string | null } | undefined {
    const entry = memory.get(id);
    if (entry === undefined) return undefined;
    memory.delete(id);
    if (entry.expires <= now) return undefined;
    memory.set(id, entry); // most recently used last
    return entry;
}

function remember(env: Env, id: string, location: string | null, ttlSeconds: number, now: number): void {
    const capacity = seconds(env.MEMORY_CACHE_ENTRIES, 10_000);
    if (capacity === 0 || ttlSeconds === 0) return;
    memory.set(id, { location, expires: now + Math.min(ttlSeconds, MEMORY_MAX_SECONDS) * 1000 });
    while (memory.size > capacity) memory.delete(memory.keys().next().value!);
}

/** Lookup through isolate memory, then caches.default, then D1; hits and misses are cached (misses shorter). */
async function lookup(env: Env, ctx: ExecutionContext, url: URL, key: string): Promise<Lookup> {
    const request = cacheKey(url, key);
    const now = Date.now();
    const remembered = fromMemory(request.url, now);
    if (remembered) return { location: remembered.location, source: "cache", layer: "memory" };
    const cache = caches.default;
    const cached = await cache.match(request);
    if (cached) {
        const stored = cached.headers.get("x-location");
        const location = stored === "" ? null : stored;
        remember(env, request.url, location, seconds(cached.headers.get("cache-control")?.match(/max-age=(\d+)/)?.[1], 0), now);
        return { location, source: "cache", layer: "edge" };
    }
    const stored = await findLocation(env, key);
    const location = stored === null ? null : href(stored);
    const ttl = location === null ? seconds(env.NEGATIVE_CACHE_TTL, 60) : seconds(env.CACHE_TTL, 300);
    if (ttl > 0) {
        const entry = new Response(null, { headers: { "cache-control": `public, max-age=${ttl}`, "x-location": location ?? "" } });
        ctx.waitUntil(cache.put(request, entry));
        remember(env, request.url, location, ttl, now);
    }
    return { location, source: "d1" };
}

/** Drops a key from this isolate's memory and the colo's cache (other colos follow within CACHE_TTL). */
async function forget(url: URL, key: string): Promise<void> {
    const request = cacheKey(url, key);
    memory.delete(request.url);
    await caches.default.delete(request);
}

function withHeader(response: Response, name: string, value: string): Response {
    const copy = new Response(response.body, response);
    copy.headers.set(name, value);
    return copy;
}

function notFound(source: string): Response {
    return new Response("Not Found\n", { status: 404, headers: { "content-type": "text/plain", "x-redirect-source": source } });
}

async function fallback(env: Env, request: Request, url: URL, source: string): Promise<Response> {
    if (fallbackMode(env) !== "origin") return notFound(source);
    const target = originTarget(env.ORIGIN_URL!, url.pathname, url.search);
    if (target === undefined) {
        console.error("ORIGIN_URL is not an absolute http(s) URL, or the request path leaves it: answering 404");
        return notFound(source);
    }
    let answer: Response;
    try {
        answer = await fetch(new Request(target, request));
    } catch (error) {
        // The origin is unreachable: a gateway error from the origin's side, not a Worker failure.
        console.error(`origin fetch failed for ${target}: ${error instanceof Error ? error.message : String(error)}`);
        return new Response("Bad Gateway: the old origin did not answer\n",
            { status: 502, headers: { "content-type": "text/plain", "x-redirect-source": source } });
    }
    return withHeader(answer, "x-redirect-source", source);
}

function fallbackMode(env: Env): "origin" | "404" {
    const mode = env.FALLBACK ?? (env.ORIGIN_URL ? "origin" : "404");
    return mode === "origin" && env.ORIGIN_URL ? "origin" : "404";
}

async function redirect(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    const key = redirectKey(url.toString(), { matchHost: env.MATCH_HOST === "true" });
    let found: Lookup;
    try {
        found = await lookup(env, ctx, url, key);
    } catch (error) {
        // D1 unavailable (or the table not created yet): fail open to the old origin, never a false 404.
        console.error(`redirect lookup failed for ${key}: ${error instanceof Error ? error.message : String(error)}`);
        if (fallbackMode(env) === "origin") return fallback(env, request, url, "error");
        return new Response("Service Unavailable\n", { status: 503, headers: { "retry-after": "5", "x-redirect-source": "error" } });
    }
    let query = url.searchParams;
    const transformed = found.location === null ? cloudinaryFallback(key) : undefined;
    if (transformed) {
        // A transformed Cloudinary URL: the row holds the untransformed one; its transformations become the variant.
        const untransformed = await lookup(env, ctx, url, transformed.key).catch(() => found);
        if (untransformed.location !== null) [found, query] = [untransformed, transformed.query];
    }
    const { location, source, layer } = found;
    if (location === null) return fallback(env, request, url, source);
    const target = redirectLocation(location, query, env.FLEXIBLE_VARIANTS === "true");
    return new Response(null, {
        status: 301,
        headers: {
            location: target,
            "cache-control": `public, max-age=${seconds(env.REDIRECT_MAX_AGE, 86400)}`,
            "x-redirect-source": source,
            ...(layer ? { "x-redirect-cache": layer } : {}),
        },
    });
}

/** A webhook answer (the only JSON ones). */
const json = (status: number, body: unknown): Response =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "x-redirect-source": "webhook" } });

/** 405: a method this path never answers (no lookup was made). */
const methodNotAllowed = (allow: string): Response => new Response(null, { status: 405, headers: { allow, "x-redirect-source": "method" } });

function parseEvent(body: string, matchHost: boolean): WebhookEvent | string {
    let value: unknown;
    try {
        value = JSON.parse(body);
    } catch {
        return "body is not JSON";
    }
    const event = value as Partial<WebhookEvent> | null;
    if (!event || typeof event !== "object") return "body must be a JSON object";
    if (event.type !== "image.updated" && event.type !== "image.deleted") return `type must be "image.updated" or "image.deleted"`;
    if (typeof event.imageId !== "string" || event.imageId === "") return "imageId must be a non-empty string";
    if (event.type === "image.updated") {
        if (typeof event.sourceUrl !== "string" || !/^https?:\/\//.test(event.sourceUrl)) return "sourceUrl must be an http(s) URL";
        if (event.oldPath !== undefined) {
            if (typeof event.oldPath !== "string") return "oldPath must be a string";
            try {
                redirectKey(event.oldPath, { matchHost });
            } catch (error) {
                return `oldPath: ${error instanceof Error ? error.message : String(error)}`;
            }
        }
    }
    return event as WebhookEvent;
}

/** Applies a verified event; throws EventRefused (404/422), ImagesApiError or ReimportFailed (502). */
async function applyEvent(env: Env, url: URL, event: WebhookEvent): Promise<string[]> {
    const images: ImagesApiConfig = {
        baseUrl: env.IMAGES_API_BASE || DEFAULT_IMAGES_API_BASE,
        accountId: env.ACCOUNT_ID ?? "",
        token: env.IMAGES_API_TOKEN ?? "",
    };
    // Only images of the migration (a redirect row points at them) are touched: anything else would live outside the
    // Pulumi state, where `pulumi destroy` could never remove it.
    const rows = await findPathsOfImage(env, event.imageId);
    if (rows.length === 0) throw new EventRefused(404, `unknown image ${event.imageId}: no redirect row points at it, so it is not an image of this migration`);
    const paths = rows.map((row) => row.path);
    if (event.type === "image.deleted") {
        await deleteImage(images, event.imageId);
        await deleteRowsOfImage(env, event.imageId);
    } else {
        await reimportImage(images, event.imageId, event.sourceUrl!);
        await touchRowsOfImage(env, event.imageId);
        if (event.oldPath !== undefined) {
            const key = redirectKey(event.oldPath, { matchHost: env.MATCH_HOST === "true" });
            await upsertRow(env, key, rows[0].location, event.imageId);
            if (!paths.includes(key)) paths.push(key);
        }
    }
    await Promise.all(paths.map((key) => forget(url, key)));
    return paths;
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** 404/422 refused, 502 Images API, 503 anything else: the only other calls are D1's (retry later). */
function failure(error: unknown): Response {
    if (error instanceof EventRefused) return json(error.status, { error: error.message });
    if (error instanceof ImagesApiError || error instanceof ReimportFailed) return json(502, { error: error.message });
    const answer = json(503, { error: `redirect database (D1) failed: ${message(error)}` });
    answer.headers.set("retry-after", "5");
    return answer;
}

async function webhook(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    // Never hold an unsigned body of any size: refuse a declared one over the limit unread, stop reading past it.
    const tooLarge = () => json(413, { error: `body over ${MAX_WEBHOOK_BODY_BYTES / 1024} KiB` });
    if (declaredOver(request.headers, MAX_WEBHOOK_BODY_BYTES)) {
        await request.body?.cancel().catch(() => undefined);
        return tooLarge();
    }
    let bytes: Uint8Array | undefined;
    try {
        bytes = await readAtMost(request, MAX_WEBHOOK_BODY_BYTES);
    } catch (error) {
        return json(400, { error: `body could not be read: ${message(error)}` });
    }
    if (bytes === undefined) return tooLarge();
    const body = new TextDecoder().decode(bytes);
    const now = Math.floor(Date.now() / 1000);
    const check = await checkSignature(env.WEBHOOK_SECRET!, request.headers.get("x-sourcing-kit-timestamp"),
        request.headers.get("x-sourcing-kit-signature"), body, now);
    if (!check.ok) return json(401, { error: check.reason });
    const event = parseEvent(body, env.MATCH_HOST === "true");
    if (typeof event === "string") return json(400, { error: event });
    let fresh: boolean;
    try {
        fresh = await recordWebhookEvent(env, check.signature, now);
    } catch (error) {
        return failure(error);
    }
    if (!fresh) return json(401, { error: "replayed webhook" });
    const forget = () => forgetWebhookEvent(env, check.signature)
        .catch((e: unknown) => console.error(`webhook: cannot forget the signature: ${message(e)}`));
    // One delivery at a time per image: two re-imports side by side could interleave their DELETEs and uploads, and
    // the older one's bytes could end up under the ID after the newer one was applied.
    let lease: { acquired: boolean; expiresAt: number };
    try {
        lease = await acquireImageLease(env, event.imageId, check.signature, now);
    } catch (error) {
        await forget();
        return failure(error);
    }
    if (!lease.acquired) {
        // Not applied: the same delivery may come again once the other one is done.
        await forget();
        const retryAfter = Math.max(1, Math.min(5, lease.expiresAt - now));
        const busy = json(503, { error: `another delivery for ${event.imageId} is in progress; nothing changed, send this one again in ${retryAfter} s` });
        busy.headers.set("retry-after", String(retryAfter));
        return busy;
    }
    try {
        return await applyInOrder(env, url, event, Number(request.headers.get("x-sourcing-kit-timestamp")), forget);
    } finally {
        await releaseImageLease(env, event.imageId, check.signature)
            .catch((e: unknown) => console.error(`webhook: cannot release the lease of ${event.imageId}: ${message(e)}`));
    }
}

/** Under the image's lease: applies the event if it is newer than the image's mark, putting the mark back on failure. */
async function applyInOrder(env: Env, url: URL, event: WebhookEvent, ts: number, forget: () => Promise<void>): Promise<Response> {
    // Events of one image apply in timestamp order: an older one arriving late must not revert a newer one.
    let mark: { advanced: boolean; previous: number | null };
    try {
        mark = await advanceImageMark(env, event.imageId, ts);
    } catch (error) {
        await forget();
        return failure(error);
    }
    if (!mark.advanced) {
        return json(409, { error: `an event for ${event.imageId} as new or newer than timestamp ${ts} was already accepted; nothing changed` });
    }
    try {
        const paths = await applyEvent(env, url, event);
        return json(200, { ok: true, type: event.type, imageId: event.imageId, paths });
    } catch (error) {
        // Not applied: the sender may retry the same delivery.
        await forget();
        await restoreImageMark(env, event.imageId, ts, mark.previous).catch((e: unknown) => console.error(`webhook: cannot restore the image mark: ${message(e)}`));
        return failure(error);
    }
}

// ---------------------------------------------------------------- Entrypoint

export default {
    async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
        const url = new URL(request.url);
        if (env.WEBHOOK_SECRET && url.pathname === (env.WEBHOOK_PATH || DEFAULT_WEBHOOK_PATH)) {
            return request.method === "POST" ? webhook(request, env) : methodNotAllowed("POST");
        }
        if (request.method === "GET" || request.method === "HEAD") return redirect(request, env, ctx);
        // Other methods are never redirected: the old origin answers them, or 405 without one.
        if (fallbackMode(env) === "origin") return fallback(env, request, url, "passthrough");
        return methodNotAllowed("GET, HEAD");
    },
} satisfies ExportedHandler<Env>;
