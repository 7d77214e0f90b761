import { strict as assert } from "assert";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { CloudflareApiError, FileTooLargeError } from "../../provider/errors";
import { ImagesClient, ImagesClientOptions, MAX_UPLOAD_BYTES } from "../../provider/images-client";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";

let limiterSeq = 0;

function clientFor(emu: Emulator, opts: Partial<ImagesClientOptions> = {}): ImagesClient {
    return new ImagesClient({
        apiToken: "test-token", apiBaseUrl: emu.baseUrl, accountId: emu.accountId,
        rateLimit: { requests: 10_000, windowSeconds: 1, burst: 10_000 }, baseDelayMs: 5, maxDelayMs: 100,
        // Each client its own account limiter, so budgets set by one test do not carry into the next.
        limiterKey: `images-test-${++limiterSeq}`, ...opts,
    });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    for await (const x of it) out.push(x);
    return out;
}

describe("client/images: ImagesClient against the emulator", () => {
    let emu: Emulator;
    let origin: ImageOrigin;
    let dir: string;
    before(async () => {
        emu = await startEmulator({ rateLimit: { requests: 100_000, windowSeconds: 1 } });
        origin = await startImageOrigin();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "images-client-"));
    });
    after(async () => {
        await emu.close();
        await origin.close();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("uploads by URL and by file, reads, patches and deletes images whose ids hold a /", async () => {
        const client = clientFor(emu);
        const byUrl = await client.upload({ id: "shop/products/a.png", url: origin.url("/img/1.png"),
            metadata: { src: "s3://b/a.png", n: 1 } });
        assert.equal(byUrl.id, "shop/products/a.png");
        assert.deepEqual(byUrl.meta, { src: "s3://b/a.png", n: 1 });
        assert.equal(byUrl.requireSignedURLs, false);
        assert.deepEqual(byUrl.variants, ["https://imagedelivery.net/hash-test/shop/products/a.png/public"]);
        assert.deepEqual(emu.images.get("shop/products/a.png")!.bytes, pngBytes(1));

        const file = path.join(dir, "b.png");
        fs.writeFileSync(file, pngBytes(2));
        const byFile = await client.upload({ id: "shop/b.png", filePath: file, requireSignedURLs: false, creator: "me" });
        assert.equal(byFile.filename, "b.png");
        assert.equal(byFile.creator, "me");
        assert.deepEqual(emu.images.get("shop/b.png")!.bytes, pngBytes(2));

        assert.deepEqual((await client.get("shop/products/a.png"))?.meta, { src: "s3://b/a.png", n: 1 });
        const patched = await client.update("shop/products/a.png", { metadata: { n: 2 } });
        assert.deepEqual(patched.meta, { n: 2 });
        assert.equal(await client.delete("shop/products/a.png"), "deleted");
        assert.equal(await client.delete("shop/products/a.png"), "not-found");
        assert.equal(await client.get("shop/products/a.png"), undefined);
        assert.equal(emu.counters.byRoute["GET images/v1/{id} 404"], 1);
    });

    it("keeps one connection alive across 20 URL and file uploads instead of leaving a socket open per upload", async () => {
        const client = clientFor(emu);
        const port = Number(new URL(emu.baseUrl).port);
        const file = path.join(dir, "reuse.png");
        fs.writeFileSync(file, pngBytes(7));
        for (let i = 0; i < 10; i++) {
            await client.upload({ id: `reuse/url-${i}.png`, url: origin.url(`/img/${i}.png`) });
            await client.upload({ id: `reuse/file-${i}.png`, filePath: file });
        }
        // Sockets of this process to the emulator (it runs here too: its side of each connection counts as well).
        const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
        const toEmulator = handles.filter((h) => h instanceof net.Socket && h.remotePort === port && !h.destroyed);
        assert.ok(toEmulator.length <= 2, `${toEmulator.length} open connections to the emulator after 20 sequential uploads`);
        assert.equal(emu.images.get("reuse/url-9.png")?.bytes.equals(pngBytes(9)), true);
    });

    it("downloads the original bytes (blob), retries a 5xx on it, and reports a missing image as undefined", async () => {
        const client = clientFor(emu);
        await client.upload({ id: "blob/original.png", url: origin.url("/img/7.png") });
        assert.deepEqual(await client.blob("blob/original.png"), pngBytes(7));
        emu.setFaults({ errorRate: 0.5, seed: 3 });
        try {
            for (let i = 0; i < 6; i++) assert.deepEqual(await client.blob("blob/original.png"), pngBytes(7), "5xx answers are retried");
        } finally {
            emu.setFaults(undefined);
        }
        assert.ok(emu.counters.faultsInjected > 0, "faults were injected");
        assert.equal(await client.blob("blob/absent.png"), undefined);
    });

    it("uploads without a custom id (Cloudflare picks one)", async () => {
        const image = await clientFor(emu).upload({ url: origin.url("/img/3.png") });
        assert.ok(image.id.length > 0);
        assert.ok(emu.images.has(image.id));
    });

    it("surfaces a taken custom id as CloudflareApiError 5409, unhidden", async () => {
        const client = clientFor(emu);
        await client.upload({ id: "dup.png", url: origin.url("/img/4.png") });
        const err = await client.upload({ id: "dup.png", url: origin.url("/img/5.png") })
            .then(() => assert.fail("expected 5409"), (e: unknown) => e as CloudflareApiError);
        assert.ok(err instanceof CloudflareApiError);
        assert.ok(err.hasCode(5409));
        assert.equal(err.attempts, 1);
        assert.match(err.message, /^POST \/accounts\/acc-test\/images\/v1: HTTP 409, code 5409: /);
    });

    it("refuses a file over 10 MB before sending anything", async () => {
        const big = path.join(dir, "big.png");
        fs.writeFileSync(big, "");
        fs.truncateSync(big, MAX_UPLOAD_BYTES + 1);
        const before = emu.counters.requests;
        await assert.rejects(clientFor(emu).upload({ id: "big.png", filePath: big }),
            (e: unknown) => e instanceof FileTooLargeError && /over Cloudflare Images' upload limit/.test(e.message));
        await assert.rejects(clientFor(emu).upload({ id: "gone.png", filePath: path.join(dir, "missing.png") }),
            /filePath .*missing\.png: cannot read the file/);
        await assert.rejects(clientFor(emu).upload({ id: "both.png", filePath: big, url: origin.url("/img/1.png") }),
            /exactly one of url or filePath/);
        assert.equal(emu.counters.requests, before);
    });

    it("lists every image across v2 pages, and reports stats", async () => {
        const client = clientFor(emu);
        emu.images.clear();
        await Promise.all(Array.from({ length: 25 }, (_, i) =>
            client.upload({ id: `list/${i}.png`, url: origin.url(`/img/${i}.png`) })));
        emu.resetCounters();
        const listed = await collect(client.list({ perPage: 10, sortOrder: "asc" }));
        assert.deepEqual(listed.map((i) => i.id).sort(), Array.from({ length: 25 }, (_, i) => `list/${i}.png`).sort());
        assert.equal(emu.counters.byRoute["GET images/v2 200"], 3);
        assert.deepEqual(await client.stats(), { current: 25, allowed: 100_000 });
    });

    it("throws on a wrong account instead of reporting the image as missing", async () => {
        const client = clientFor(emu, { accountId: "someone-else" });
        await assert.rejects(client.get("x.png"), (e: CloudflareApiError) => e.status === 403 && e.hasCode(9109));
        await assert.rejects(client.delete("x.png"), (e: CloudflareApiError) => e.status === 403);
    });
});

describe("client/images: the batch API against the emulator", () => {
    let emu: Emulator;
    let origin: ImageOrigin;
    before(async () => {
        emu = await startEmulator({ rateLimit: { requests: 100_000, windowSeconds: 1 },
            batch: { requestsPerSecond: 20, tokenTtlSeconds: 3 } });
        origin = await startImageOrigin();
    });
    after(async () => {
        await emu.close();
        await origin.close();
    });

    const batchClient = (opts: Partial<ImagesClientOptions> = {}) => clientFor(emu, { useBatchApi: true, ...opts });
    const batchTokenFetches = () => emu.counters.byRoute["GET images/v1/batch_token 200"] ?? 0;

    it("sends image requests to the batch host with one shared batch token", async () => {
        emu.resetCounters();
        const a = batchClient();
        const b = batchClient();
        await a.upload({ id: "batch/1.png", url: origin.url("/img/1.png"), metadata: { k: "v" } });
        assert.equal((await b.get("batch/1.png"))?.id, "batch/1.png");
        assert.deepEqual((await a.update("batch/1.png", { metadata: { k: "w" } })).meta, { k: "w" });
        assert.deepEqual((await collect(b.list())).map((i) => i.id), ["batch/1.png"]);
        assert.equal(await a.delete("batch/1.png"), "deleted");
        assert.equal(await b.get("batch/1.png"), undefined);
        assert.equal(batchTokenFetches(), 1);
        const routes = Object.keys(emu.counters.byRoute).filter((k) => !k.startsWith("GET images/v1/batch_token"));
        assert.ok(routes.every((k) => k.startsWith("batch ")), routes.join(", "));
    });

    it("keeps under the batch host's requests per second with its own budget", async () => {
        emu.resetCounters();
        const client = batchClient({ batchRateLimit: { requests: 15, windowSeconds: 1 } });
        const results = await Promise.all(Array.from({ length: 40 }, (_, i) => client.get(`none/${i}`)));
        assert.ok(results.every((r) => r === undefined));
        assert.equal(emu.counters.http429, 0);
    });

    it("fetches a new batch token before the old one expires, and after the batch host rejects one", async () => {
        const client = batchClient();
        await client.get("x");
        const fetched = batchTokenFetches();
        await new Promise((r) => setTimeout(r, 2500)); // past 80% of the 3 s life: refresh before expiresAt
        await client.get("x");
        assert.equal(batchTokenFetches(), fetched + 1);
        assert.equal(emu.counters.byRoute["batch GET images/v1/{id} 401"] ?? 0, 0);

        for (const token of emu.batchTokens.keys()) emu.batchTokens.set(token, Date.now() - 1); // expire out of band
        assert.equal(await client.get("x"), undefined);
        assert.equal(emu.counters.byRoute["batch GET images/v1/{id} 401"], 1);
        assert.equal(batchTokenFetches(), fetched + 2);
    });
});

describe("client/images: limits and faults against the emulator", () => {
    let emu: Emulator;
    let origin: ImageOrigin;
    before(async () => {
        emu = await startEmulator();
        origin = await startImageOrigin();
    });
    after(async () => {
        await emu.close();
        await origin.close();
    });

    it("a burst of 300 requests with the budget below the emulator's limit gets no 429 at all", async () => {
        emu.setRateLimit({ requests: 60, windowSeconds: 1 });
        emu.resetCounters();
        const client = clientFor(emu, { rateLimit: { requests: 50, windowSeconds: 1 } });
        const results = await Promise.all(Array.from({ length: 300 }, (_, i) => client.get(`burst/${i}`)));
        assert.equal(results.length, 300);
        assert.equal(emu.counters.http429, 0);
        assert.equal(emu.counters.byRoute["GET images/v1/{id} 404"], 300);
        assert.ok(emu.counters.maxRequestsInWindow <= 50, `server saw ${emu.counters.maxRequestsInWindow} in a window`);
    });

    it("recovers from 429s when the budget is above the emulator's limit, every request succeeding", async () => {
        emu.setRateLimit({ requests: 30, windowSeconds: 1 });
        emu.resetCounters();
        const client = clientFor(emu, { rateLimit: { requests: 1000, windowSeconds: 1, burst: 1000 } });
        const results = await Promise.all(Array.from({ length: 75 }, (_, i) => client.get(`over/${i}`)));
        assert.equal(results.length, 75);
        assert.ok(emu.counters.http429 > 0, "the emulator never said 429");
        assert.equal(emu.counters.byRoute["GET images/v1/{id} 404"], 75);
    });

    it("with 20% faults (errors, drops, and faults after the write), 200 uploads each land exactly once", async () => {
        emu.setRateLimit({ requests: 100_000, windowSeconds: 1 });
        emu.images.clear();
        emu.resetCounters();
        emu.setFaults({ errorRate: 0.1, dropRate: 0.1, afterWriteRate: 0.1, seed: 20 });
        try {
            const client = clientFor(emu, { maxAttempts: 10 });
            const ids = Array.from({ length: 200 }, (_, i) => `faults/${i}.png`);
            let adoptedAfterRetry = 0;
            await Promise.all(ids.map(async (id, i) => {
                const nonce = `run-${i}`;
                try {
                    await client.upload({ id, url: origin.url(`/img/${i}.png`), metadata: { nonce } });
                } catch (e) {
                    // What the provider does: a 5409 after a retry is our own first attempt if the image is ours.
                    if (!(e instanceof CloudflareApiError && e.hasCode(5409) && e.attempts > 1)) throw e;
                    const existing = await client.get(id);
                    assert.equal(existing?.meta?.nonce, nonce, `${id} exists but is not ours`);
                    adoptedAfterRetry++;
                }
            }));
            assert.deepEqual([...emu.images.keys()].sort(), [...ids].sort());
            assert.equal(emu.counters.uploads, 200);
            assert.ok(emu.counters.faultsInjected > 40, `only ${emu.counters.faultsInjected} faults`);
            assert.ok(emu.counters.afterWriteFaults > 0 && adoptedAfterRetry > 0, "no fault after a write was exercised");
        } finally {
            emu.setFaults(undefined);
        }
    });
});
