import { strict as assert } from "assert";
import { createHash, createHmac } from "crypto";
import fc from "fast-check";
import * as path from "path";
import * as ts from "typescript";
import { startEmulator, Emulator } from "../emulator";
import { upsertStatements } from "../../provider/redirect/rows";
import { redirectKey } from "../../provider/redirect/paths";
import { bundleWorker } from "../../components/redirect/bundle";
import { pngBytes, pngHeaderOnly, pngOfSize } from "../emulator/fixtures";
import { MAX_IMAGE_BYTES } from "../../components/redirect/image-bytes";
import { RecordingServer, RedirectWorkers, ServerAnswer, startRedirectWorkers, startServer } from "./fixtures";

const SECRET = "whsec-test-0123456789";
const HOST = "http://old-cdn.test";
const SHOE = "https://imagedelivery.net/hash-test/products/shoe/public";

/**
 * Distinct, increasing timestamps inside the 5-minute window: events of one image apply in timestamp order.
 * Each is taken from the clock when signed (never below now - 240 s), not from when the file was loaded: mocha
 * loads every file first, and on a slow run these tests start minutes later.
 */
let lastTimestamp = 0;
const nextTimestamp = (): number => (lastTimestamp = Math.max(lastTimestamp + 1, Math.floor(Date.now() / 1000) - 240));

function signed(body: string, timestamp = nextTimestamp(), secret = SECRET): RequestInit {
    const signature = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
    return {
        method: "POST",
        body,
        headers: { "content-type": "application/json", "x-sourcing-kit-timestamp": String(timestamp), "x-sourcing-kit-signature": `sha256=${signature}` },
    };
}

describe("redirect Worker in workerd", function () {
    let workers: RedirectWorkers;
    let origin: RecordingServer;
    let source: RecordingServer;
    let emulator: Emulator;
    let elsewhere: RecordingServer;

    const rowCount = async (): Promise<number> =>
        (await workers.db.prepare("SELECT count(*) AS n FROM redirects").bind().first<number>("n"))!;
    const locationOf = async (key: string): Promise<string | null> =>
        workers.db.prepare("SELECT location FROM redirects WHERE path = ?1").bind(key).first<string>("location");

    before(async () => {
        origin = await startServer((req) => ({ status: 200, body: `origin ${req.method} ${req.url}` }));
        const sources: Record<string, ServerAnswer> = {
            "/shoe-v2.png": { type: "image/png", body: pngBytes(2) },
            "/page.html": { type: "text/html", body: "<!doctype html><p>moved</p>" },
            "/lying.png": { type: "image/png", body: "<!doctype html><p>an error page served as image/png</p>" },
            "/big.png": { type: "image/png", body: pngOfSize(MAX_IMAGE_BYTES + 1) },
            "/big-chunked.png": { type: "image/png", body: pngOfSize(MAX_IMAGE_BYTES + 1), chunked: true },
            "/huge-dimensions.png": { type: "image/png", body: pngHeaderOnly(20_000, 20_000) },
        };
        source = await startServer((req) => sources[req.url ?? ""] ?? { status: 404, body: "not found" });
        emulator = await startEmulator();
        elsewhere = await startServer(() => ({ body: "content from another host" }));
        workers = await startRedirectWorkers([
            {
                name: "edge",
                bindings: {
                    FALLBACK: "origin", ORIGIN_URL: `${origin.url}/legacy`, FLEXIBLE_VARIANTS: "true",
                    WEBHOOK_SECRET: SECRET, IMAGES_API_BASE: emulator.baseUrl, IMAGES_API_TOKEN: "test-token", ACCOUNT_ID: emulator.accountId,
                },
            },
            { name: "strict", bindings: { FALLBACK: "404" } },
            { name: "edge-cache-only", bindings: { FALLBACK: "404", MEMORY_CACHE_ENTRIES: "0" } },
            { name: "no-table-origin", bindings: { FALLBACK: "origin", ORIGIN_URL: origin.url }, databaseId: "empty-db" },
            { name: "no-table-404", bindings: { FALLBACK: "404" }, databaseId: "empty-db" },
            { name: "webhook-no-table", bindings: { FALLBACK: "404", WEBHOOK_SECRET: SECRET }, databaseId: "empty-db" },
            { name: "origin-root", bindings: { FALLBACK: "origin", ORIGIN_URL: origin.url } },
            { name: "origin-down", bindings: { FALLBACK: "origin", ORIGIN_URL: "http://127.0.0.1:9/legacy" } },
            {
                name: "hosts",
                bindings: {
                    FALLBACK: "404", MATCH_HOST: "true", WEBHOOK_SECRET: SECRET,
                    IMAGES_API_BASE: emulator.baseUrl, IMAGES_API_TOKEN: "test-token", ACCOUNT_ID: emulator.accountId,
                },
            },
        ]);
        const rows = {
            "/products/shoe.jpg": SHOE,
            "/Gallery/My%20Photo%20(1).JPG": "https://imagedelivery.net/hash-test/gallery/my-photo-1/public",
            "/caf%C3%A9/cr%C3%A8me.png": "https://imagedelivery.net/hash-test/cafe/creme/public",
            "/hot.jpg": "https://imagedelivery.net/hash-test/hot/public",
            "/raw-unicode.jpg": "https://imagedelivery.net/hash-test/caf\u00e9 1/public",
            "/demo/image/upload/v1700000000/shop/boot.jpg": "https://imagedelivery.net/hash-test/shop/boot/public",
            "/demo/image/upload/shop/boot.jpg": "https://imagedelivery.net/hash-test/shop/boot/public",
            "/demo/image/upload/logo.png": "https://imagedelivery.net/hash-test/logo/public",
        };
        await workers.db.batch(upsertStatements("test-shard", rows).map((s) => workers.db.prepare(s.sql).bind(...s.params)));
    });

    after(async () => {
        await workers?.dispose();
        await Promise.all([origin?.close(), source?.close(), emulator?.close(), elsewhere?.close()]);
    });

    describe("lookups", () => {
        it("answers GET of a mapped path with a cacheable 301 to the delivery URL, looked up in D1", async () => {
            const res = await workers.fetch("strict", `${HOST}/products/shoe.jpg`);
            assert.equal(res.status, 301);
            assert.equal(res.headers.get("location"), SHOE);
            assert.match(res.headers.get("cache-control") ?? "", /^public, max-age=\d+$/);
            assert.equal(res.headers.get("x-redirect-source"), "d1");
        });

        it("answers HEAD the same way", async () => {
            const res = await workers.fetch("strict", `${HOST}/Gallery/My%20Photo%20(1).JPG`, { method: "HEAD" });
            assert.equal(res.status, 301);
            assert.equal(res.headers.get("location"), "https://imagedelivery.net/hash-test/gallery/my-photo-1/public");
        });

        it("serves a hot path from isolate memory, then from the colo's Cache API, without D1 (the row can be gone)", async () => {
            const first = await workers.fetch("strict", `${HOST}/hot.jpg`);
            assert.equal(first.headers.get("x-redirect-source"), "d1");
            assert.equal(first.headers.get("x-redirect-cache"), null);
            await workers.db.prepare("DELETE FROM redirects WHERE path = ?1").bind("/hot.jpg").run();
            const second = await workers.fetch("strict", `${HOST}/hot.jpg`);
            assert.equal(second.status, 301);
            assert.equal(second.headers.get("x-redirect-source"), "cache");
            assert.equal(second.headers.get("x-redirect-cache"), "memory");
            assert.equal(second.headers.get("location"), "https://imagedelivery.net/hash-test/hot/public");
            // Another isolate without memory caching finds the entry the first one put in the colo cache.
            const other = await workers.fetch("edge-cache-only", `${HOST}/hot.jpg`);
            assert.equal(other.status, 301);
            assert.equal(other.headers.get("x-redirect-cache"), "edge");
            assert.equal(other.headers.get("location"), "https://imagedelivery.net/hash-test/hot/public");
        });

        it("matches differently spelled requests of one path (encoding, duplicate and trailing slashes)", async () => {
            for (const spelling of ["//Gallery//My%20Photo%20%281%29.JPG/", "/Gallery/My Photo (1).JPG", "/%47allery/My%20Photo%20(1).JPG"]) {
                const res = await workers.fetch("strict", `${HOST}${spelling}`);
                assert.equal(res.status, 301, spelling);
                assert.equal(res.headers.get("location"), "https://imagedelivery.net/hash-test/gallery/my-photo-1/public", spelling);
            }
        });

        it("matches non-ASCII paths however their escapes are cased", async () => {
            for (const spelling of ["/café/crème.png", "/caf%c3%a9/cr%C3%A8me.png"]) {
                const res = await workers.fetch("strict", `${HOST}${spelling}`);
                assert.equal(res.status, 301, spelling);
                assert.equal(res.headers.get("location"), "https://imagedelivery.net/hash-test/cafe/creme/public");
            }
        });

        it("percent-encodes a stored delivery URL that holds raw non-ASCII characters or spaces", async () => {
            const res = await workers.fetch("strict", `${HOST}/raw-unicode.jpg`);
            assert.equal(res.status, 301);
            assert.equal(res.headers.get("location"), "https://imagedelivery.net/hash-test/caf%C3%A9%201/public");
        });

        it("finds rows keyed in Node for arbitrary odd paths requested through workerd (one normalisation, two runtimes)", async () => {
            const piece = fc.oneof(fc.constantFrom("/", "//", "%", "%2f", "%41", "%zz", " ", ".", "..", "~", "'", "\"", "é", "\u{1F600}", "|", "[", ";"),
                fc.string({ unit: "grapheme-ascii", maxLength: 3 }).filter((t) => !/[?#]/.test(t)));
            const paths = fc.sample(fc.array(piece, { minLength: 1, maxLength: 8 }).map((p) => `/odd/${p.join("")}`), { numRuns: 60, seed: 42 });
            const rows = Object.fromEntries(paths.map((p, i) => [redirectKey(`${HOST}${p}`), `https://imagedelivery.net/hash-test/odd-${i}/public`]));
            await workers.db.batch(upsertStatements("odd", rows).map((st) => workers.db.prepare(st.sql).bind(...st.params)));
            for (const p of paths) {
                const res = await workers.fetch("strict", `${HOST}${p}`);
                assert.equal(res.status, 301, `${JSON.stringify(p)} (key ${redirectKey(`${HOST}${p}`)})`);
                assert.equal(res.headers.get("location"), rows[redirectKey(`${HOST}${p}`)]);
            }
        });

        it("does not treat the path as case-insensitive", async () => {
            const res = await workers.fetch("strict", `${HOST}/PRODUCTS/SHOE.JPG`);
            assert.equal(res.status, 404);
        });

        it("carries imgix resize queries over to a flexible variant when enabled, and drops them otherwise", async () => {
            const edge = await workers.fetch("edge", `${HOST}/products/shoe.jpg?w=400&h=300&q=75&fm=webp&fit=crop&s=abc`);
            assert.equal(edge.headers.get("location"), "https://imagedelivery.net/hash-test/products/shoe/w=400,h=300,fit=cover,quality=75,format=webp");
            const strict = await workers.fetch("strict", `${HOST}/products/shoe.jpg?w=400&fm=webp`);
            assert.equal(strict.headers.get("location"), SHOE);
        });

        it("redirects transformed Cloudinary URLs through their untransformed row, transformations as the variant", async () => {
            const path = "/demo/image/upload/w_300,h_200,c_fill/q_80,f_webp/v1700000000/shop/boot.jpg";
            const edge = await workers.fetch("edge", `${HOST}${path}`);
            assert.equal(edge.status, 301);
            assert.equal(edge.headers.get("location"), "https://imagedelivery.net/hash-test/shop/boot/w=300,h=200,fit=cover,quality=80,format=webp");
            const strict = await workers.fetch("strict", `${HOST}/demo/image/upload/c_limit,w_64/shop/boot.jpg`);
            assert.equal(strict.status, 301);
            assert.equal(strict.headers.get("location"), "https://imagedelivery.net/hash-test/shop/boot/public");
        });

        it("never strips an ordinary folder with an underscore (web_assets, img_2020): no 301 to a different image", async () => {
            for (const folder of ["web_assets", "img_2020", "my_folder"]) {
                const res = await workers.fetch("strict", `${HOST}/demo/image/upload/${folder}/logo.png`);
                assert.equal(res.status, 404, folder);
                assert.equal(res.headers.get("location"), null, folder);
            }
            const transformed = await workers.fetch("strict", `${HOST}/demo/image/upload/w_300,c_fill/logo.png`);
            assert.equal(transformed.status, 301);
            assert.equal(transformed.headers.get("location"), "https://imagedelivery.net/hash-test/logo/public");
        });
    });

    describe("unmapped paths and other methods", () => {
        it("passes unmapped paths through to the old origin (path prefix and query kept)", async () => {
            const res = await workers.fetch("edge", `${HOST}/not/migrated.jpg?v=2`);
            assert.equal(res.status, 200);
            assert.equal(await res.text(), "origin GET /legacy/not/migrated.jpg?v=2");
            assert.equal(res.headers.get("x-redirect-source"), "d1");
        });

        it("answers 404 for unmapped paths with fallback 404", async () => {
            const res = await workers.fetch("strict", `${HOST}/not/migrated.jpg`);
            assert.equal(res.status, 404);
        });

        it("never redirects other methods: 405 without an origin, passthrough with one", async () => {
            const strict = await workers.fetch("strict", `${HOST}/products/shoe.jpg`, { method: "POST", body: "x" });
            assert.equal(strict.status, 405);
            assert.equal(strict.headers.get("allow"), "GET, HEAD");
            const before = origin.requests.length;
            const edge = await workers.fetch("edge", `${HOST}/products/shoe.jpg`, { method: "PUT", body: "payload" });
            assert.equal(edge.status, 200);
            assert.deepEqual(origin.requests.slice(before), [{ method: "PUT", url: "/legacy/products/shoe.jpg", body: "payload" }]);
        });

        it("fails open to the origin when D1 fails (no table yet), and answers 503 rather than a false 404 without one", async () => {
            const open = await workers.fetch("no-table-origin", `${HOST}/no-table/a.jpg`);
            assert.equal(open.status, 200);
            assert.equal(await open.text(), "origin GET /no-table/a.jpg");
            assert.equal(open.headers.get("x-redirect-source"), "error");
            const closed = await workers.fetch("no-table-404", `${HOST}/no-table/a.jpg`);
            assert.equal(closed.status, 503);
        });

        it("never proxies a path that looks protocol-relative (//host/x, /\\host/x) to another host, and answers // without a 5xx", async () => {
            const foreign = new URL(elsewhere.url).host;
            for (const worker of ["origin-root", "edge"]) {
                for (const attack of [`//${foreign}/steal`, `/\\${foreign}/steal`, `/\\/${foreign}/steal`, `///${foreign}/steal?x=1`]) {
                    const res = await workers.fetch(worker, `${HOST}${attack}`);
                    assert.equal(res.status, 200, `${worker} ${attack}`);
                    assert.match(await res.text(), new RegExp(`^origin GET /(legacy/)?${foreign.replace(/\./g, "\\.")}/steal`), `${worker} ${attack}`);
                }
                const root = await workers.fetch(worker, `${HOST}//`);
                assert.equal(root.status, 200, `${worker} GET //`);
                assert.match(await root.text(), /^origin GET \/(legacy\/)?$/);
            }
            assert.deepEqual(elsewhere.requests, [], "a request was proxied to another host");
        });

        it("answers 502 with x-redirect-source when the old origin is unreachable, instead of crashing", async () => {
            const res = await workers.fetch("origin-down", `${HOST}/origin-down/a.jpg`);
            assert.equal(res.status, 502);
            assert.equal(res.headers.get("x-redirect-source"), "d1");
            assert.match(await res.text(), /old origin did not answer/);
        });

        it("never answers 5xx for fuzzed paths, methods and headers while D1 and the origin are up", async () => {
            const piece = fc.oneof(fc.constantFrom("%", "%2F", "%25", "%00", "%ZZ", "..", ".", "//", "/", "\\", "é", "💥", "'", '"', ";", "?", "#", " ", "%E2%82", "\t"),
                fc.string({ maxLength: 8 }), fc.webSegment());
            const header = fc.tuple(fc.constantFrom("x-sourcing-kit-signature", "x-sourcing-kit-timestamp", "range", "if-none-match", "host", "content-type", "x-any"),
                fc.string({ maxLength: 40 }).map((v) => v.replace(/[^\t\x20-\x7e]/g, "").trim()));
            const request = fc.record({
                path: fc.array(piece, { maxLength: 10 }).map((parts) => `/${parts.join("")}`),
                method: fc.constantFrom("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"),
                headers: fc.array(header, { maxLength: 4 }),
                worker: fc.constantFrom("edge", "origin-root", "strict"),
            });
            const statuses: string[] = [];
            await fc.assert(fc.asyncProperty(request, async ({ path, method, headers, worker }) => {
                const init = { method, headers: Object.fromEntries(headers), body: method === "GET" || method === "HEAD" ? undefined : "body" };
                const res = await workers.fetch(worker, `${HOST}${path}`, init);
                await res.arrayBuffer();
                statuses.push(`${worker} ${method} ${JSON.stringify(path)} ${res.status}`);
                return res.status < 500;
            }), { numRuns: 120, seed: 5150 });
            assert.equal(statuses.length, 120);
            assert.deepEqual(elsewhere.requests, []);
        });

        it("treats SQL-injection-shaped paths as plain keys", async () => {
            const rowsBefore = await rowCount();
            for (const attack of ["/x.jpg' OR '1'='1", "/a.jpg;DROP TABLE redirects;--", "/%27%20OR%201=1--", '/"; DELETE FROM redirects; --']) {
                const res = await workers.fetch("strict", `${HOST}${attack}`);
                assert.equal(res.status, 404, attack);
            }
            assert.equal(await rowCount(), rowsBefore);
        });
    });

    describe("webhooks", () => {
        const WEBHOOK = `${HOST}/_sourcing-kit/webhook`;
        const OLD_BYTES = pngBytes(1);
        const NEW_BYTES = pngBytes(2);
        const OLD_META = { alt: "Red shoe", _skh: "etag-1" };
        const updated = (imageId: string, sourcePath: string, extra: Record<string, string> = {}) =>
            signed(JSON.stringify({ type: "image.updated", imageId, sourceUrl: `${source.url}${sourcePath}`, ...extra }));
        const seedImage = (id: string, bytes: Buffer, meta: Record<string, unknown>) =>
            emulator.images.set(id, { id, filename: "shoe.png", meta, requireSignedURLs: false, uploaded: new Date().toISOString(), bytes, contentType: "image/png" });
        const sourceRequests = () => source.requests.length;
        let updatedInit: RequestInit;

        before(() => {
            seedImage("products/shoe", OLD_BYTES, OLD_META);
            updatedInit = updated("products/shoe", "/shoe-v2.png", { oldPath: "/old/Shoe Alias.jpg/" });
        });

        it("image.updated uploads the fetched bytes as a file into the same custom ID, keeps the metadata with the new bytes' hash, and points the old path at it", async () => {
            emulator.resetCounters();
            const res = await workers.fetch("edge", WEBHOOK, updatedInit);
            assert.equal(res.status, 200, await res.clone().text());
            const body = (await res.json()) as { paths: string[] };
            assert.deepEqual(body.paths.sort(), ["/old/Shoe%20Alias.jpg", "/products/shoe.jpg"]);
            const image = emulator.images.get("products/shoe")!;
            assert.deepEqual(image.bytes, NEW_BYTES);
            assert.equal(image.sourceUrl, undefined, "uploaded as a file, not by URL");
            assert.equal(image.filename, "shoe-v2.png");
            assert.deepEqual(image.meta, { alt: "Red shoe", _skh: `sha256:${createHash("sha256").update(NEW_BYTES).digest("hex")}` });
            assert.deepEqual(emulator.counters.byRoute, {
                "GET images/v1/{id} 200": 1, "GET images/v1/{id}/blob 200": 1, "GET images/v1/batch_token 200": 1,
                "batch DELETE images/v1/{id} 200": 1, "batch POST images/v1 200": 1,
            }, "the writes go to the batch host, which the account rate limit does not count");
            assert.deepEqual(source.requests.map((r) => r.url), ["/shoe-v2.png"]);
            assert.equal(await locationOf("/old/Shoe%20Alias.jpg"), SHOE);
            const redirect = await workers.fetch("edge", `${HOST}/old/Shoe%20Alias.jpg`);
            assert.equal(redirect.status, 301);
            assert.equal(redirect.headers.get("location"), SHOE);
        });

        it("rejects a replayed delivery with 401 and changes nothing", async () => {
            emulator.resetCounters();
            const res = await workers.fetch("edge", WEBHOOK, updatedInit);
            assert.equal(res.status, 401);
            assert.match(await res.text(), /replayed/);
            assert.equal(emulator.counters.requests, 0);
        });

        it("rejects a bad signature with 401 and changes nothing", async () => {
            emulator.resetCounters();
            const body = JSON.stringify({ type: "image.deleted", imageId: "products/shoe" });
            for (const init of [signed(body, undefined, "wrong-secret"), { ...signed(body), body: body.replace("shoe", "boot") },
                { method: "POST", body, headers: { "x-sourcing-kit-timestamp": String(Math.floor(Date.now() / 1000)) } }]) {
                const res = await workers.fetch("edge", WEBHOOK, init);
                assert.equal(res.status, 401);
            }
            assert.equal(emulator.counters.requests, 0);
            assert.ok(emulator.images.has("products/shoe"));
            assert.equal(await locationOf("/products/shoe.jpg"), SHOE);
        });

        it("rejects a correctly signed but stale delivery (over 5 minutes old) with 401", async () => {
            emulator.resetCounters();
            const body = JSON.stringify({ type: "image.deleted", imageId: "products/shoe" });
            const res = await workers.fetch("edge", WEBHOOK, signed(body, Math.floor(Date.now() / 1000) - 600));
            assert.equal(res.status, 401);
            assert.match(await res.text(), /5-minute window/);
            assert.equal(emulator.counters.requests, 0);
        });

        it("answers 404 'unknown image' to image.updated and image.deleted of an image no row points at, and creates or deletes nothing", async () => {
            seedImage("outside/state.png", OLD_BYTES, {});
            emulator.resetCounters();
            const fetched = sourceRequests();
            for (const [imageId, init] of [["never/migrated.png", updated("never/migrated.png", "/shoe-v2.png")],
                ["outside/state.png", updated("outside/state.png", "/shoe-v2.png")],
                ["outside/state.png", signed(JSON.stringify({ type: "image.deleted", imageId: "outside/state.png" }))]] as const) {
                const res = await workers.fetch("edge", WEBHOOK, init);
                assert.equal(res.status, 404, imageId);
                assert.match(await res.text(), new RegExp(`unknown image ${imageId}: no redirect row points at it`));
            }
            assert.equal(emulator.counters.requests, 0, "no Images API call");
            assert.equal(sourceRequests(), fetched, "the source was not fetched");
            assert.ok(!emulator.images.has("never/migrated.png"));
            assert.deepEqual(emulator.images.get("outside/state.png")?.bytes, OLD_BYTES);
            emulator.images.delete("outside/state.png");
        });

        it("answers 422 and changes nothing when the new source is missing, not an image, over 10 MiB or unreachable; the delivery stays retryable", async () => {
            const before = emulator.images.get("products/shoe")!;
            emulator.resetCounters();
            for (const [sourcePath, why] of [["/gone.png", /answered HTTP 404, expected 200/], ["/page.html", /is not an image \(content-type "text\/html"/],
                ["/lying.png", /is not an image \(content-type "image\/png"/],
                ["/big.png", /is 10485761 bytes, over the 10485760-byte upload limit/], ["/big-chunked.png", /is over the 10485760-byte upload limit/]] as const) {
                const init = updated("products/shoe", sourcePath);
                for (const attempt of ["first", "retry"]) {
                    const res = await workers.fetch("edge", WEBHOOK, init);
                    assert.equal(res.status, 422, `${sourcePath} ${attempt}`);
                    assert.match(((await res.json()) as { error: string }).error, why);
                }
            }
            const unreachable = signed(JSON.stringify({ type: "image.updated", imageId: "products/shoe", sourceUrl: "http://127.0.0.1:9/unreachable.png" }));
            const res = await workers.fetch("edge", WEBHOOK, unreachable);
            assert.equal(res.status, 422);
            assert.match(await res.text(), /cannot be fetched.*the current image is unchanged/);
            assert.equal(emulator.counters.requests, 0, "the Images API was not called");
            assert.equal(emulator.images.get("products/shoe"), before);
        });

        it("restores the previous image and answers 502 when the upload of the new bytes fails, and the sender may retry", async () => {
            const before = emulator.images.get("products/shoe")!;
            emulator.resetCounters();
            const init = updated("products/shoe", "/huge-dimensions.png");
            for (const attempt of ["first", "retry"]) {
                const res = await workers.fetch("edge", WEBHOOK, init);
                assert.equal(res.status, 502, attempt);
                assert.match(await res.text(), /re-import of products\/shoe failed: POST \/images\/v1: HTTP 400.*dimensions.*; the previous image was restored/);
                const now = emulator.images.get("products/shoe")!;
                assert.deepEqual(now.bytes, before.bytes, attempt);
                assert.deepEqual(now.meta, before.meta, attempt);
                assert.equal(now.filename, before.filename);
            }
            assert.equal(emulator.counters.deletes, 2);
            assert.equal(emulator.counters.uploads, 2, "two restores, no new image");
            assert.equal(await locationOf("/products/shoe.jpg"), SHOE);
        });

        it("answers 503 with Retry-After, not a crash, when D1 fails (no table yet)", async () => {
            emulator.resetCounters();
            const res = await workers.fetch("webhook-no-table", WEBHOOK, signed(JSON.stringify({ type: "image.deleted", imageId: "products/shoe" })));
            assert.equal(res.status, 503);
            assert.equal(res.headers.get("retry-after"), "5");
            assert.match(((await res.json()) as { error: string }).error, /^redirect database \(D1\) failed: .*no such table/);
            assert.equal(emulator.counters.requests, 0);
        });

        it("answers 413 to a body over 64 KiB before any signature check: by content-length unread, and by a streamed body cut off at the limit", async () => {
            emulator.resetCounters();
            const declared = await workers.fetch("edge", WEBHOOK, { method: "POST", body: "x".repeat(64 * 1024 + 1) });
            assert.equal(declared.status, 413);
            // A streamed body (chunked, no content-length) over the limit. The Worker answers before the client has
            // sent it all, so on a loaded machine workerd may reset the connection under the unsent rest (the client
            // sees ECONNRESET instead of the 413): that too refuses the body; the 413 must come within three tries.
            const streamOver = async (): Promise<number | "reset"> => {
                let pulled = 0;
                const chunked = new ReadableStream<Uint8Array>({
                    pull(controller) {
                        if (++pulled > 5) controller.close();
                        else controller.enqueue(new Uint8Array(16 * 1024).fill(120));
                    },
                });
                try {
                    const res = await workers.fetch("edge", WEBHOOK, { method: "POST", body: chunked, duplex: "half" } as RequestInit);
                    await res.arrayBuffer();
                    return res.status;
                } catch (error) {
                    const code = (error as { cause?: { code?: string } }).cause?.code;
                    if (code === "ECONNRESET" || code === "EPIPE") return "reset";
                    throw error;
                }
            };
            const outcomes: (number | "reset")[] = [];
            while (outcomes.length < 3 && !outcomes.includes(413)) outcomes.push(await streamOver());
            assert.ok(outcomes.includes(413), `streamed over the limit: ${outcomes.join(", ")}`);
            assert.ok(outcomes.every((o) => o === 413 || o === "reset"), outcomes.join(", "));
            // A signed body just under the limit is still read and checked.
            const padded = JSON.stringify({ type: "image.deleted", imageId: "not/ours" }) + " ".repeat(60 * 1024);
            const under = await workers.fetch("edge", WEBHOOK, signed(padded));
            assert.equal(under.status, 404);
            assert.equal(emulator.counters.requests, 0);
        });

        it("answers 409 and changes nothing to an event older than one already applied to the image (out of order, within the window)", async () => {
            const older = signed(JSON.stringify({ type: "image.updated", imageId: "products/shoe", sourceUrl: `${source.url}/shoe-v2.png` }));
            const newer = signed(JSON.stringify({ type: "image.updated", imageId: "products/shoe", sourceUrl: `${source.url}/shoe-v2.png` }));
            const applied = await workers.fetch("edge", WEBHOOK, newer);
            assert.equal(applied.status, 200, await applied.text());
            const image = emulator.images.get("products/shoe");
            const mark = await workers.db.prepare("SELECT ts FROM webhook_image_marks WHERE image_id = ?1").bind("products/shoe").first<number>("ts");
            emulator.resetCounters();
            const late = await workers.fetch("edge", WEBHOOK, older);
            assert.equal(late.status, 409);
            assert.match(((await late.json()) as { error: string }).error, /already accepted; nothing changed/);
            assert.equal(emulator.counters.requests, 0, "the Images API was not called");
            assert.equal(emulator.images.get("products/shoe"), image);
            assert.equal(await workers.db.prepare("SELECT ts FROM webhook_image_marks WHERE image_id = ?1").bind("products/shoe").first<number>("ts"), mark);
            // A same-timestamp event is not newer either; an event of another image is not held back by this one's mark.
            const twin = await workers.fetch("edge", WEBHOOK, signed(JSON.stringify({ type: "image.deleted", imageId: "products/shoe" }), mark!));
            assert.equal(twin.status, 409);
            assert.ok(emulator.images.has("products/shoe"));
        });

        it("a refused or failed event leaves the image's mark where it was, so the same delivery can be retried", async () => {
            const mark = () => workers.db.prepare("SELECT ts FROM webhook_image_marks WHERE image_id = ?1").bind("products/shoe").first<number>("ts");
            const before = await mark();
            const res = await workers.fetch("edge", WEBHOOK, signed(JSON.stringify({ type: "image.updated", imageId: "products/shoe", sourceUrl: `${source.url}/gone.png` })));
            assert.equal(res.status, 422);
            assert.equal(await mark(), before);
        });

        describe("one delivery per image at a time (webhook_image_leases)", () => {
            const LEASED = "products/lease";
            const leaseOf = () => workers.db.prepare("SELECT holder, expires_at FROM webhook_image_leases WHERE image_id = ?1").bind(LEASED)
                .first<{ holder: string; expires_at: number }>();
            const deleted = () => signed(JSON.stringify({ type: "image.deleted", imageId: LEASED }));

            beforeEach(async () => {
                seedImage(LEASED, OLD_BYTES, { alt: "lease", _skh: "etag-1" });
                await workers.db.batch([
                    workers.db.prepare("DELETE FROM webhook_image_leases WHERE image_id = ?1").bind(LEASED),
                    workers.db.prepare("INSERT OR REPLACE INTO redirects (path, location, image_id, shard, updated_at) VALUES (?1, ?2, ?3, 's', 0)")
                        .bind("/products/lease.png", `https://imagedelivery.net/hash-test/${LEASED}/public`, LEASED),
                ]);
            });

            it("a second delivery while the first works answers 503 with Retry-After and calls nothing; sent again afterwards it applies", async () => {
                emulator.resetCounters();
                emulator.setFaults({ latencyMs: [400, 400], routes: "writes" });
                const first = updated(LEASED, "/shoe-v2.png");
                const second = deleted();
                let busy: Response;
                let done: Response;
                try {
                    const running = workers.fetch("edge", WEBHOOK, first);
                    for (let polls = 0; (await leaseOf()) === null; polls++) {
                        assert.ok(polls < 500, "the first delivery never took the lease");
                        await new Promise((resolve) => setTimeout(resolve, 10));
                    }
                    busy = await workers.fetch("edge", WEBHOOK, second);
                    done = await running;
                } finally {
                    emulator.setFaults(undefined);
                }
                assert.equal(done.status, 200, await done.text());
                assert.equal(busy.status, 503);
                assert.match(((await busy.json()) as { error: string }).error, /^another delivery for products\/lease is in progress; nothing changed/);
                const retryAfter = Number(busy.headers.get("retry-after"));
                assert.ok(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${retryAfter}`);
                // Only the first delivery reached the Images API: one GET, one DELETE, one upload.
                assert.equal(emulator.counters.byRoute["GET images/v1/{id} 200"], 1, JSON.stringify(emulator.counters.byRoute));
                assert.equal(emulator.counters.deletes, 1);
                assert.equal(emulator.counters.uploads, 1);
                assert.deepEqual(emulator.images.get(LEASED)!.bytes, NEW_BYTES);
                assert.equal(await leaseOf(), null, "the lease is released when the delivery ends");
                // The busy answer forgot the signature: the same delivery is not a replay, and it applies now.
                const again = await workers.fetch("edge", WEBHOOK, second);
                assert.equal(again.status, 200, await again.clone().text());
                assert.ok(!emulator.images.has(LEASED));
                assert.equal(await locationOf("/products/lease.png"), null);
            });

            it("waits out a live lease of another delivery, takes over an expired one (its invocation died), and releases only its own", async () => {
                const now = Math.floor(Date.now() / 1000);
                await workers.db.prepare("INSERT INTO webhook_image_leases (image_id, holder, expires_at) VALUES (?1, 'other', ?2)").bind(LEASED, now + 100).run();
                emulator.resetCounters();
                const delivery = deleted();
                const busy = await workers.fetch("edge", WEBHOOK, delivery);
                assert.equal(busy.status, 503);
                assert.equal(busy.headers.get("retry-after"), "5");
                assert.equal(emulator.counters.requests, 0);
                assert.deepEqual(await leaseOf(), { holder: "other", expires_at: now + 100 }, "another delivery's lease is left alone");
                // That delivery died: its lease runs out, and the same delivery sent again takes it over.
                await workers.db.prepare("UPDATE webhook_image_leases SET expires_at = ?2 WHERE image_id = ?1").bind(LEASED, now - 1).run();
                const taken = await workers.fetch("edge", WEBHOOK, delivery);
                assert.equal(taken.status, 200, await taken.clone().text());
                assert.ok(!emulator.images.has(LEASED));
                assert.equal(await leaseOf(), null);
            });

            it("releases the lease when the delivery fails or is out of order, so nothing stays blocked", async () => {
                const failing = updated(LEASED, "/page.html");
                assert.equal((await workers.fetch("edge", WEBHOOK, failing)).status, 422);
                assert.equal(await leaseOf(), null);
                const mark = await workers.db.prepare("SELECT ts FROM webhook_image_marks WHERE image_id = ?1").bind(LEASED).first<number>("ts");
                // An event older than the image's mark (a body no earlier delivery signed, so not a replay).
                const stale = signed(JSON.stringify({ type: "image.deleted", imageId: LEASED, note: "late" }), (mark ?? lastTimestamp) - 1);
                const late = await workers.fetch("edge", WEBHOOK, stale);
                assert.equal(late.status, 409, await late.clone().text());
                assert.equal(await leaseOf(), null);
                assert.ok(emulator.images.has(LEASED));
            });
        });

        it("answers 400 for a signed body that is not an event", async () => {
            const res = await workers.fetch("edge", WEBHOOK, signed(JSON.stringify({ type: "image.renamed", imageId: "x" })));
            assert.equal(res.status, 400);
        });

        it("image.deleted deletes the image and its rows, and the old paths stop redirecting at once", async () => {
            const warm = await workers.fetch("edge", `${HOST}/products/shoe.jpg`);
            assert.equal(warm.status, 301);
            const res = await workers.fetch("edge", WEBHOOK, signed(JSON.stringify({ type: "image.deleted", imageId: "products/shoe" })));
            assert.equal(res.status, 200);
            assert.ok(!emulator.images.has("products/shoe"));
            assert.equal(await locationOf("/products/shoe.jpg"), null);
            assert.equal(await locationOf("/old/Shoe%20Alias.jpg"), null);
            const strict = await workers.fetch("edge", `${HOST}/products/shoe.jpg`);
            assert.equal(strict.status, 200, "passed through to the origin instead of a stale cached 301");
            assert.equal(strict.headers.get("x-redirect-source"), "d1");
        });

        it("with MATCH_HOST, a webhook arriving on any host purges the cached lookup of the host the row is for", async () => {
            const id = "hosts/boot";
            seedImage(id, OLD_BYTES, { alt: "boot" });
            await workers.db.prepare("INSERT OR REPLACE INTO redirects (path, location, image_id, shard, updated_at) VALUES (?1, ?2, ?3, 's', 0)")
                .bind("img.example.com/boot.jpg", `https://imagedelivery.net/hash-test/${id}/public`, id).run();
            const lookup = () => workers.fetch("hosts", "https://img.example.com/boot.jpg");
            assert.equal((await lookup()).status, 301);
            const cached = await lookup();
            assert.equal(cached.status, 301);
            assert.equal(cached.headers.get("x-redirect-source"), "cache");
            const res = await workers.fetch("hosts", "http://hooks.example.com/_sourcing-kit/webhook", signed(JSON.stringify({ type: "image.deleted", imageId: id })));
            assert.equal(res.status, 200, await res.clone().text());
            const after = await lookup();
            assert.equal(after.status, 404, "no stale cached 301 on img.example.com");
            assert.equal(after.headers.get("x-redirect-source"), "d1");
        });

        it("answers 405 to other methods on the webhook path", async () => {
            const res = await workers.fetch("edge", WEBHOOK);
            assert.equal(res.status, 405);
        });
    });

    describe("x-redirect-source on every answer (components/redirect/README.md)", () => {
        it("carries x-redirect-source on every kind of answer: 301s, 404, passthrough, 502, 503, both 405s and the webhook's", async () => {
            const key = "/source-header/a.jpg";
            await workers.db.batch(upsertStatements("source-header", { [key]: SHOE }).map((s) => workers.db.prepare(s.sql).bind(...s.params)));
            // Each lookup of a miss asks for a path never asked before: the workers of one Miniflare share the colo cache.
            const kinds: [string, string, string, RequestInit | undefined, number, string][] = [
                ["301 from D1", "strict", key, undefined, 301, "d1"],
                ["301 from the cache", "strict", key, undefined, 301, "cache"],
                ["404 unmapped", "strict", "/source-header/none-404.jpg", undefined, 404, "d1"],
                ["unmapped GET passed to the origin", "edge", "/source-header/none-origin.jpg", undefined, 200, "d1"],
                ["other method passed to the origin", "edge", key, { method: "POST", body: "x" }, 200, "passthrough"],
                ["405 other method without an origin", "strict", key, { method: "POST", body: "x" }, 405, "method"],
                ["origin unreachable", "origin-down", "/source-header/none-down.jpg", undefined, 502, "d1"],
                ["D1 failing, passed to the origin", "no-table-origin", "/source-header/no-table.jpg", undefined, 200, "error"],
                ["503 D1 failing without an origin", "no-table-404", "/source-header/no-table.jpg", undefined, 503, "error"],
                ["405 other method on the webhook path", "edge", "/_sourcing-kit/webhook", undefined, 405, "method"],
                ["webhook 401 unsigned", "edge", "/_sourcing-kit/webhook", { method: "POST", body: "{}" }, 401, "webhook"],
                ["webhook 400 not an event", "edge", "/_sourcing-kit/webhook", signed(JSON.stringify({ type: "image.renamed", imageId: "x" })), 400, "webhook"],
                ["webhook 413 body too large", "edge", "/_sourcing-kit/webhook", { method: "POST", body: "x".repeat(64 * 1024 + 1) }, 413, "webhook"],
            ];
            const seen: [string, number, string | null][] = [];
            for (const [kind, worker, url, init] of kinds) {
                const res = await workers.fetch(worker, `${HOST}${url}`, init);
                await res.arrayBuffer();
                seen.push([kind, res.status, res.headers.get("x-redirect-source")]);
            }
            assert.deepEqual(seen, kinds.map(([kind, , , , status, source]) => [kind, status, source]));
        });
    });

    describe("source", () => {
        it("bundles into one module with no Node built-ins", () => {
            const script = bundleWorker();
            assert.match(script, /export \{[\s\S]*as default/);
            assert.doesNotMatch(script, /require\(|from "node:|from "crypto"/);
        });

        it("type-checks against @cloudflare/workers-types", () => {
            const configPath = path.join(__dirname, "../../components/redirect/worker/tsconfig.json");
            const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined })!;
            const program = ts.createProgram(config.fileNames, config.options);
            const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
            assert.deepEqual(diagnostics, []);
        });
    });
});
