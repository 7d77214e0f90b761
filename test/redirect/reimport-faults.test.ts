import { strict as assert } from "assert";
import { createHash, createHmac } from "crypto";
import * as http from "http";
import { AddressInfo } from "net";
import { Emulator, startEmulator, StoredImage } from "../emulator";
import { pngBytes } from "../emulator/fixtures";
import { RecordingServer, RedirectWorkers, startRedirectWorkers, startServer } from "./fixtures";

const SECRET = "whsec-reimport-faults";
const WEBHOOK = "http://old-cdn.test/_sourcing-kit/webhook";
const hashOf = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

function signed(body: string): RequestInit {
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = createHmac("sha256", SECRET).update(`${timestamp}.${body}`).digest("hex");
    return { method: "POST", body, headers: { "x-sourcing-kit-timestamp": String(timestamp), "x-sourcing-kit-signature": `sha256=${signature}` } };
}

/** A loopback proxy in front of the emulator; `intercept` may answer a request itself (true) or let it through. */
async function startEmulatorProxy(emu: Emulator, intercept: (req: http.IncomingMessage, res: http.ServerResponse) => boolean):
    Promise<{ baseUrl: string; close(): Promise<void> }> {
    const target = new URL(emu.baseUrl);
    const server = http.createServer((req, res) => {
        if (intercept(req, res)) return;
        const forward = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
        });
        forward.on("error", () => res.destroy());
        req.pipe(forward);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`,
        close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
}

/** Forwards to the emulator but refuses batch tokens (403, code 10000), as for an API token without that permission. */
function startNoBatchProxy(emu: Emulator): Promise<{ baseUrl: string; close(): Promise<void> }> {
    return startEmulatorProxy(emu, (req, res) => {
        if (!req.url?.endsWith("/images/v1/batch_token")) return false;
        res.writeHead(403, { "content-type": "application/json" });
        res.end(JSON.stringify({ success: false, errors: [{ code: 10000, message: "Authentication error" }], messages: [], result: null }));
        return true;
    });
}

/** Forwards to the emulator; before the first upload (POST …/images/v1) goes through, puts `foreign` under its ID out of band. */
function startIntruderProxy(emu: Emulator, foreign: () => StoredImage): Promise<{ baseUrl: string; close(): Promise<void> }> {
    let intruded = false;
    return startEmulatorProxy(emu, (req) => {
        if (!intruded && req.method === "POST" && /\/images\/v1(\?|$)/.test(req.url ?? "")) {
            intruded = true;
            const image = foreign();
            emu.images.set(image.id, image);
        }
        return false;
    });
}

describe("redirect Worker: re-import under rate limits and faults never loses the image", function () {
    let emulator: Emulator;
    let throttled: Emulator;
    let source: RecordingServer;
    let workers: RedirectWorkers;
    let noBatch: Awaited<ReturnType<typeof startNoBatchProxy>>;
    let intruder: Awaited<ReturnType<typeof startIntruderProxy>>;
    const INTRUDED_ID = "intruder/no-hash.png";
    const foreignBytes = pngBytes(9999);

    before(async () => {
        // /v/<n>.png: a distinct valid PNG per n, so every update has new bytes.
        source = await startServer((req) => {
            const n = /^\/v\/(\d+)\.png$/.exec(req.url ?? "")?.[1];
            return n === undefined ? { status: 404, body: "not found" } : { type: "image/png", body: pngBytes(Number(n)) };
        });
        emulator = await startEmulator();
        throttled = await startEmulator({ batch: { requestsPerSecond: 1 } });
        noBatch = await startNoBatchProxy(emulator);
        intruder = await startIntruderProxy(emulator, () => ({ id: INTRUDED_ID, filename: "foreign.png", meta: { owner: "someone else" },
            requireSignedURLs: false, uploaded: new Date().toISOString(), bytes: foreignBytes, contentType: "image/png" }));
        const bindings = (emu: Emulator, base = emu.baseUrl) => ({
            FALLBACK: "404", WEBHOOK_SECRET: SECRET, IMAGES_API_BASE: base, IMAGES_API_TOKEN: "test-token", ACCOUNT_ID: emu.accountId,
        });
        workers = await startRedirectWorkers([
            { name: "edge", bindings: bindings(emulator) },
            { name: "throttled", bindings: bindings(throttled) },
            { name: "no-batch", bindings: bindings(emulator, noBatch.baseUrl) },
            { name: "intruder", bindings: bindings(emulator, intruder.baseUrl) },
        ]);
    });

    after(async () => {
        await workers?.dispose();
        await Promise.all([emulator?.close(), throttled?.close(), source?.close(), noBatch?.close(), intruder?.close()]);
    });

    let version = 100;
    /** Puts an image with old bytes under `id` in `emu`, with a row pointing at it; returns the bytes. */
    const seed = async (emu: Emulator, id: string): Promise<Buffer> => {
        const bytes = pngBytes(version++);
        emu.images.set(id, { id, filename: "old.png", meta: { alt: "old", _skh: hashOf(bytes) }, requireSignedURLs: false,
            uploaded: new Date().toISOString(), bytes, contentType: "image/png" });
        await workers.db.prepare("INSERT OR REPLACE INTO redirects (path, location, image_id, shard, updated_at) VALUES (?1, ?2, ?3, 's', 0)")
            .bind(`/old/${id}`, `https://imagedelivery.net/${emu.accountHash}/${id}/public`, id).run();
        return bytes;
    };
    /** A signed image.updated to fresh bytes, and those bytes. */
    const update = (id: string): { init: RequestInit; bytes: Buffer } => {
        const n = version++;
        return { init: signed(JSON.stringify({ type: "image.updated", imageId: id, sourceUrl: `${source.url}/v/${n}.png` })), bytes: pngBytes(n) };
    };
    const send = async (worker: string, init: RequestInit) => {
        const res = await workers.fetch(worker, WEBHOOK, init);
        return { status: res.status, text: await res.text() };
    };

    it("a 429 burst after the DELETE is waited out (Retry-After) and ends with the new image", async () => {
        const id = "burst/after-delete.png";
        await seed(throttled, id);
        throttled.resetCounters();
        const next = update(id);
        // The batch host allows 1 request a second here: the DELETE passes, the upload right after it gets 429s.
        const res = await send("throttled", next.init);
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(throttled.images.get(id)!.bytes, next.bytes);
        assert.ok((throttled.counters.byRoute["batch POST images/v1 429"] ?? 0) >= 1, JSON.stringify(throttled.counters.byRoute));
        assert.equal(throttled.counters.deletes, 1);
        assert.equal(throttled.counters.uploads, 1);
    });

    it("a 429 burst on the account API (short window) is waited out instead of failing the delivery", async () => {
        const id = "burst/account.png";
        await seed(emulator, id);
        emulator.resetCounters();
        emulator.setRateLimit({ requests: 2, windowSeconds: 1 });
        try {
            const next = update(id);
            const res = await send("edge", next.init);
            assert.equal(res.status, 200, res.text);
            assert.deepEqual(emulator.images.get(id)!.bytes, next.bytes);
            assert.ok(emulator.counters.http429 >= 1, "the account limit answered 429");
        } finally {
            emulator.setRateLimit({ requests: 1200, windowSeconds: 300 });
        }
    });

    it("an account rate limit that cannot be waited out fails before the DELETE: 502, the image unchanged, the delivery retryable", async () => {
        const id = "burst/blocked.png";
        const old = await seed(emulator, id);
        const next = update(id);
        for (const allowed of [1, 2]) {
            emulator.setRateLimit({ requests: allowed, windowSeconds: 600 });
            const res = await send("edge", next.init);
            emulator.setRateLimit({ requests: 1200, windowSeconds: 300 });
            assert.equal(res.status, 502, res.text);
            assert.match(res.text, /HTTP 429.*Retry-After 600 s would pass the 20 s/);
            assert.deepEqual(emulator.images.get(id)!.bytes, old);
        }
        const res = await send("edge", next.init);
        assert.equal(res.status, 200, `the same delivery again: ${res.text}`);
        assert.deepEqual(emulator.images.get(id)!.bytes, next.bytes);
    });

    it("keeps the account API for the writes when the token may not have a batch token, and still replaces the image", async () => {
        const id = "no-batch/a.png";
        await seed(emulator, id);
        emulator.resetCounters();
        const next = update(id);
        const res = await send("no-batch", next.init);
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(emulator.images.get(id)!.bytes, next.bytes);
        assert.deepEqual(emulator.counters.byRoute, {
            "GET images/v1/{id} 200": 1, "GET images/v1/{id}/blob 200": 1, "DELETE images/v1/{id} 200": 1, "POST images/v1 200": 1,
        });
    });

    it("does not call a foreign image without _skh 'restored' when the backup had no _skh either (undefined is no hash)", async () => {
        const id = INTRUDED_ID;
        const old = pngBytes(version++);
        emulator.images.set(id, { id, filename: "old.png", meta: { alt: "old" }, requireSignedURLs: false,
            uploaded: new Date().toISOString(), bytes: old, contentType: "image/png" });
        await workers.db.prepare("INSERT OR REPLACE INTO redirects (path, location, image_id, shard, updated_at) VALUES (?1, ?2, ?3, 's', 0)")
            .bind(`/old/${id}`, `https://imagedelivery.net/${emulator.accountHash}/${id}/public`, id).run();
        // After the DELETE, another image (no _skh) lands under the ID: the upload and the restore both answer 5409.
        const res = await send("intruder", update(id).init);
        assert.equal(res.status, 502, res.text);
        assert.doesNotMatch(res.text, /previous image was restored/);
        assert.match(res.text, /neither the previous nor the new image/);
        assert.deepEqual(emulator.images.get(id)!.bytes, foreignBytes);
    });

    it("recognises its own upload by the new hash when a retried upload answers 5409 (the first answer was lost)", async () => {
        const id = "lost/answer.png";
        await seed(emulator, id);
        emulator.resetCounters();
        // Every write takes effect and then loses its answer: the DELETE is retried into a 404, the upload into a 5409.
        emulator.setFaults({ afterWriteRate: 1, afterWriteKind: "drop", routes: "writes", seed: 1 });
        try {
            const next = update(id);
            const res = await send("edge", next.init);
            assert.equal(res.status, 200, res.text);
            const image = emulator.images.get(id)!;
            assert.deepEqual(image.bytes, next.bytes);
            assert.deepEqual(image.meta, { alt: "old", _skh: hashOf(next.bytes) });
            assert.equal(emulator.counters.byRoute["batch POST images/v1 409"], 1);
            assert.equal(emulator.counters.uploads, 1, "no restore over the new image");
        } finally {
            emulator.setFaults(undefined);
        }
    });

    it("under errors, dropped connections and lost answers on writes, every delivery ends with exactly one image: the new bytes (200) or the old ones (502), and a retried delivery lands", async () => {
        const outcomes: Record<number, number> = {};
        for (let s = 1; s <= 10; s++) {
            const id = `faults/${s}.png`;
            let current = await seed(emulator, id);
            const others = emulator.images.size;
            const next = update(id);
            emulator.setFaults({ errorRate: 0.4, dropRate: 0.2, afterWriteRate: 0.3, routes: "writes", seed: s });
            try {
                for (let attempt = 1; ; attempt++) {
                    const res = await send("edge", next.init);
                    outcomes[res.status] = (outcomes[res.status] ?? 0) + 1;
                    const image = emulator.images.get(id);
                    assert.ok(image, `seed ${s}, attempt ${attempt}: no image under ${id} (HTTP ${res.status}: ${res.text})`);
                    assert.equal(emulator.images.size, others, "no other image was created");
                    if (res.status === 200) {
                        assert.deepEqual(image.bytes, next.bytes, `seed ${s}: 200 with the new bytes`);
                        assert.equal(image.meta._skh, hashOf(next.bytes));
                        break;
                    }
                    assert.equal(res.status, 502, `seed ${s}: ${res.text}`);
                    assert.deepEqual(image.bytes, current, `seed ${s}, attempt ${attempt}: 502 with the old bytes (${res.text})`);
                    assert.ok(attempt < 8, `seed ${s}: the retried delivery never landed`);
                    current = image.bytes;
                }
            } finally {
                emulator.setFaults(undefined);
            }
        }
        assert.ok(outcomes[502] >= 1 && outcomes[200] === 10, `both outcomes seen: ${JSON.stringify(outcomes)}`);
    });
});
