// Issue 8.1: a migration through the real provider host (images and their redirect rows in D1) survives 5xx/524
// answers, dropped connections (some after the write took effect), 429 bursts with Retry-After and latency spikes
// beyond the request timeout, with nothing lost and nothing duplicated; the next `up` is a no-op, and a destroy
// under the same faults leaves the account empty.
import { strict as assert } from "assert";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, startImageOrigin } from "../emulator/fixtures";
import { DesiredResource, EngineDriver } from "../host/engine-driver";
import {
    auditImages, captureProviders, CLEAN_AUDIT, expose, Exposure, GENEROUS_RATE_LIMIT, imageResource, providerConfig,
    rowsResource, secret, seededRandom, SerializedProvider, sleep, SOAK, writeRequests,
} from "./harness";
import { DATABASE_ID, RedirectWorker, startRedirectWorker } from "./redirect-worker";
import { SpikeProxy, startSpikeProxy } from "./spike-proxy";
import { unpackMetadata } from "../../provider/source-metadata";

const N = SOAK ? 2000 : 500;
const BOOTSTRAP = "tok-bootstrap-faults-7c1e0a94d2";
const SCOPED = "tok-scoped-faults-52b8e6f13a";
/** The provider's per-request timeout in this test; spikes hold requests past it. */
const TIMEOUT_MS = 600;
const SEED = 8101;
/** Custom IDs that are valid but easy to mis-encode (percent signs, escapes, non-ASCII, dot segments, case). */
const ODD_IDS = [
    "odd/100%.png", "odd/100%25.png", "odd/%2F.png", "odd/..%2F..%2Fetc.png", "odd/../up.png", "odd/./dot.png", "odd/ünïcödé.png",
    "odd/u%CC%88.png", "odd/emoji💥.png", "odd/a+b=c&d.png", "odd/semi;colon.png", "odd/UPPER.PNG", "odd/upper.png", `odd/${"l".repeat(1000)}.png`,
];
const IMAGES = N + ODD_IDS.length;
/** Redirect rows per RedirectRows shard. */
const SHARD = 250;

describe("reliability: a migration under injected faults", function () {
    this.timeout(SOAK ? 1_800_000 : 240_000);
    let providers: { image: SerializedProvider; rows: SerializedProvider };
    let worker: RedirectWorker;
    let mapping: Record<string, string>;
    let emu: Emulator;
    let proxy: SpikeProxy;
    let origin: ImageOrigin;
    let driver: EngineDriver;
    let desired: DesiredResource[];
    /** Faults injected over every faulty run of this file (for the report). */
    const totals = { faults: 0, dropped: 0, afterWrite: 0, http429: 0 };

    /** The faults of this test, switched on for a run, with 429 bursts: a tight per-token limit for the first 700 ms of every 2 s. */
    async function underFaults<T>(run: () => Promise<T>): Promise<T> {
        emu.resetCounters();
        emu.setFaults({ errorRate: 0.1, dropRate: 0.01, afterWriteRate: 0.01, afterWriteKind: "drop", latencyMs: [0, 3] });
        let running = true;
        const burster = (async () => {
            while (running) {
                emu.setRateLimit({ requests: 5, windowSeconds: 1 });
                bursts.count++;
                await sleep(700);
                emu.setRateLimit(GENEROUS_RATE_LIMIT);
                await sleep(1300);
            }
        })();
        try {
            return await run();
        } finally {
            running = false;
            await burster;
            emu.setFaults(undefined);
            const c = emu.counters;
            totals.faults += c.faultsInjected;
            totals.dropped += c.dropped;
            totals.afterWrite += c.afterWriteFaults;
            totals.http429 += c.http429;
        }
    }
    const exposure = new Exposure();
    const bursts = { count: 0 };
    let rawStateHadToken = false;

    before(async () => {
        providers = await captureProviders();
        worker = await startRedirectWorker({ FALLBACK: "404" });
        emu = await startEmulator({ tokens: [SCOPED, BOOTSTRAP], rateLimit: GENEROUS_RATE_LIMIT, seed: SEED, d1: worker.backend });
        proxy = await startSpikeProxy(`http://127.0.0.1:${emu.port}`, { rate: 0.02, delayMs: TIMEOUT_MS + 300, random: seededRandom(SEED + 1) });
        origin = await startImageOrigin();
        driver = await EngineDriver.start(providerConfig(BOOTSTRAP, { "sourcing-kit:requestTimeoutMs": String(TIMEOUT_MS) }), undefined, 16);
        exposure.watch("host output", driver.host.output);
        const imageId = (i: number) => `faults/${Math.floor(i / 100)}/img-${i}.png`;
        desired = Array.from({ length: N }, (_, i) => imageResource(providers.image, `img-${i}`, {
            accountId: emu.accountId,
            imageId: imageId(i),
            url: origin.url(`/img/${i}.png`),
            sourceHash: `sha256-faults-${i}`,
            metadata: { batch: Math.floor(i / 100), alt: `image ${i}` },
            apiBaseUrl: `${proxy.origin}/client/v4`,
            apiToken: secret(SCOPED),
        }));
        desired.push(...ODD_IDS.map((id, i) => imageResource(providers.image, `odd-${i}`, {
            accountId: emu.accountId, imageId: id, url: origin.url(`/img/${10_000 + i}.png`), sourceHash: `sha256-odd-${i}`,
            apiBaseUrl: `${proxy.origin}/client/v4`, apiToken: secret(SCOPED),
        })));
        mapping = Object.fromEntries(Array.from({ length: N }, (_, i) => [`/old/img-${i}.png`, `https://imagedelivery.net/${emu.accountHash}/${imageId(i)}/public`]));
        for (let start = 0; start < N; start += SHARD) {
            const shard = `rows-${start / SHARD}`;
            const rows = Object.fromEntries(Object.entries(mapping).slice(start, start + SHARD));
            desired.push(rowsResource(providers.rows, shard, {
                accountId: emu.accountId, databaseId: DATABASE_ID, shard, rows, apiBaseUrl: `${proxy.origin}/client/v4`, apiToken: secret(SCOPED),
            }));
        }
    });

    after(async () => {
        await driver?.host.kill();
        await proxy?.close();
        await emu?.close();
        await origin?.close();
        await worker?.dispose();
    });

    it(`migrates ${IMAGES} images (${ODD_IDS.length} with odd custom IDs) and their redirect rows through 10% 5xx/524, 2% dropped connections, 429 bursts and timeouts: each custom ID exactly once, nothing orphaned`, async () => {
        const result = await underFaults(() => driver.up(desired));
        expose(exposure, "faulty up", driver, result.errors);

        const c = emu.counters;
        console.log(`      ${IMAGES} images: ${c.faultsInjected} faults injected (${c.dropped} dropped connections, ${c.afterWriteFaults} after the write), ` +
            `${c.http429} answered 429 in ${bursts.count} bursts, ${proxy.spikes} requests held past the ${TIMEOUT_MS} ms timeout ` +
            `(${proxy.abandoned} abandoned by the client, ${proxy.appliedAfterClientLeft} of them applied anyway); ${c.requests} requests for ${desired.length} creates`);
        assert.deepEqual(result.errors, []);
        assert.equal(result.counts.create, desired.length);
        assert.deepEqual(auditImages(emu, driver, desired), CLEAN_AUDIT);
        assert.equal(emu.images.size, IMAGES);
        assert.equal(c.uploads, IMAGES, "every image was stored by exactly one successful upload");
        assert.equal(c.deletes, 0);
        assert.deepEqual(await worker.rows(), mapping, "the D1 redirect table equals the mapping");
        // Every kind of fault really happened.
        assert.ok(c.faultsInjected - c.dropped > N * 0.05, "5xx/524 answers");
        assert.ok(c.dropped > 0 && c.afterWriteFaults > 0, "dropped connections, some after the write");
        assert.ok(c.http429 > 0 && bursts.count > 0, "429 bursts");
        assert.ok(proxy.spikes > 0 && proxy.abandoned > 0, "latency spikes beyond the timeout, which the client gave up on");
        // Retries of uploads that had already taken effect were answered 5409 and read back (adopted); some 5409s went
        // to an attempt the client had already given up on.
        assert.ok((c.byRoute["POST images/v1 409"] ?? 0) > 0 && (c.byRoute["GET images/v1/{id} 200"] ?? 0) > 0, "adoption after a lost answer");
    });

    it("a second up is a no-op: every Diff says no change and the emulator sees no request at all", async () => {
        emu.resetCounters();
        const result = await driver.up(desired);
        expose(exposure, "second up", driver, result.errors);
        rawStateHadToken = driver.checkpoint().includes(SCOPED);
        assert.deepEqual(result.errors, []);
        assert.equal(result.counts.same, desired.length);
        assert.equal(Object.keys(result.counts).length, 1, JSON.stringify(result.counts));
        assert.equal(writeRequests(emu), 0);
        assert.equal(emu.counters.requests, 0);
    });

    it("a metadata change on every tenth image under the same faults patches each once, in place", async () => {
        const changed = desired.filter((d, i) => i % 10 === 0 && d.inputs.imageId !== undefined);
        for (const d of changed) d.inputs = { ...d.inputs, metadata: { ...(d.inputs.metadata as object), alt: `new alt for ${String(d.inputs.imageId)}` } };
        const result = await underFaults(() => driver.up(desired));
        expose(exposure, "faulty update", driver, result.errors);
        assert.deepEqual(result.errors, []);
        assert.equal(result.counts.update, changed.length);
        assert.equal(emu.counters.uploads + emu.counters.deletes, 0, "an update never re-uploads or deletes");
        assert.ok(emu.counters.patches >= changed.length);
        for (const d of changed) {
            const stored = emu.images.get(String(d.inputs.imageId))!;
            assert.deepEqual(unpackMetadata(stored.meta), { metadata: d.inputs.metadata, sourceHash: d.inputs.sourceHash });
        }
        assert.deepEqual(auditImages(emu, driver, desired), CLEAN_AUDIT);
    });

    it("a destroy under the same faults leaves the account empty: no image, no redirect row", async () => {
        const result = await underFaults(() => driver.destroy());
        expose(exposure, "faulty destroy", driver, result.errors);
        const c = emu.counters;
        console.log(`      destroy: ${c.faultsInjected} faults injected (${c.afterWriteFaults} after the write), ${c.http429} answered 429; ` +
            `over the whole file ${totals.faults} faults (${totals.dropped} dropped, ${totals.afterWrite} after the write), ${totals.http429} 429s, ` +
            `${proxy.spikes} requests held past the timeout`);
        assert.deepEqual(result.errors, []);
        assert.equal(result.counts.delete, desired.length);
        assert.equal(driver.state.size, 0);
        assert.equal(emu.images.size, 0);
        assert.deepEqual(await worker.rows(), {});
        assert.ok(c.faultsInjected > 0);
    });

    it("never shows the bootstrap or the scoped token in plain text in the state, the host output or errors", () => {
        assert.deepEqual(exposure.leaks({ bootstrap: BOOTSTRAP, scoped: SCOPED }), []);
        assert.ok(rawStateHadToken, "the raw state held the token, wrapped as a secret (so the scan looked for the right thing)");
    });
});
