// Issue 8.1: a migration through the real provider host survives 5xx/524 answers, dropped connections (some after
// the write took effect), 429 bursts with Retry-After and latency spikes beyond the request timeout, with nothing
// lost and nothing duplicated; the next `up` is a no-op.
import { strict as assert } from "assert";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, startImageOrigin } from "../emulator/fixtures";
import { DesiredResource, EngineDriver } from "../host/engine-driver";
import {
    auditImages, captureProviders, CLEAN_AUDIT, expose, Exposure, GENEROUS_RATE_LIMIT, hostOptions, imageResource, providerConfig,
    secret, seededRandom, SerializedProvider, sleep, SOAK, writeRequests,
} from "./harness";
import { SpikeProxy, startSpikeProxy } from "./spike-proxy";

const N = SOAK ? 2000 : 500;
const BOOTSTRAP = "tok-bootstrap-faults-7c1e0a94d2";
const SCOPED = "tok-scoped-faults-52b8e6f13a";
/** The provider's per-request timeout in this test; spikes hold requests past it. */
const TIMEOUT_MS = 600;
const SEED = 8101;

describe("reliability: a migration under injected faults", function () {
    this.timeout(SOAK ? 1_800_000 : 240_000);
    let provider: SerializedProvider;
    let emu: Emulator;
    let proxy: SpikeProxy;
    let origin: ImageOrigin;
    let driver: EngineDriver;
    let desired: DesiredResource[];
    const exposure = new Exposure();
    const bursts = { count: 0 };

    before(async () => {
        provider = (await captureProviders()).image;
        emu = await startEmulator({ tokens: [SCOPED, BOOTSTRAP], rateLimit: GENEROUS_RATE_LIMIT, seed: SEED });
        proxy = await startSpikeProxy(`http://127.0.0.1:${emu.port}`, { rate: 0.02, delayMs: TIMEOUT_MS + 300, random: seededRandom(SEED + 1) });
        origin = await startImageOrigin();
        driver = await EngineDriver.start(providerConfig(BOOTSTRAP), hostOptions(TIMEOUT_MS), 16);
        exposure.watch("host output", driver.host.output);
        desired = Array.from({ length: N }, (_, i) => imageResource(provider, `img-${i}`, {
            accountId: emu.accountId,
            imageId: `faults/${Math.floor(i / 100)}/img-${i}.png`,
            url: origin.url(`/img/${i}.png`),
            sourceHash: `sha256-faults-${i}`,
            metadata: { batch: Math.floor(i / 100), alt: `image ${i}` },
            apiBaseUrl: `${proxy.origin}/client/v4`,
            apiToken: secret(SCOPED),
        }));
    });

    after(async () => {
        await driver?.host.kill();
        await proxy?.close();
        await emu?.close();
        await origin?.close();
    });

    it(`migrates ${N} images through 10% 5xx/524, 2% dropped connections, 429 bursts and timeouts: each custom ID exactly once, nothing orphaned`, async () => {
        emu.setFaults({ errorRate: 0.1, dropRate: 0.01, afterWriteRate: 0.01, afterWriteKind: "drop", latencyMs: [0, 3], seed: SEED });
        // 429 bursts: a tight per-token limit for 700 ms out of every 2 s; the emulator answers with Retry-After.
        let running = true;
        const burster = (async () => {
            while (running) {
                await sleep(1300);
                if (!running) break;
                emu.setRateLimit({ requests: 5, windowSeconds: 1 });
                bursts.count++;
                await sleep(700);
                emu.setRateLimit(GENEROUS_RATE_LIMIT);
            }
        })();
        const result = await driver.up(desired).finally(async () => {
            running = false;
            await burster;
        });
        emu.setFaults(undefined);
        expose(exposure, "faulty up", driver, result.errors);

        const c = emu.counters;
        console.log(`      ${N} images: ${c.faultsInjected} faults injected (${c.dropped} dropped connections, ${c.afterWriteFaults} after the write), ` +
            `${c.http429} answered 429 in ${bursts.count} bursts, ${proxy.spikes} requests held past the ${TIMEOUT_MS} ms timeout ` +
            `(${proxy.appliedAfterClientLeft} applied after the client gave up); ${c.requests} requests for ${N} creates`);
        assert.deepEqual(result.errors, []);
        assert.equal(result.counts.create, N);
        assert.deepEqual(auditImages(emu, driver, desired), CLEAN_AUDIT);
        assert.equal(emu.images.size, N);
        assert.equal(c.uploads, N, "every image was stored by exactly one successful upload");
        assert.equal(c.deletes, 0);
        // Every kind of fault really happened.
        assert.ok(c.faultsInjected - c.dropped > N * 0.05, "5xx/524 answers");
        assert.ok(c.dropped > 0 && c.afterWriteFaults > 0, "dropped connections, some after the write");
        assert.ok(c.http429 > 0 && bursts.count > 0, "429 bursts");
        assert.ok(proxy.spikes > 0, "latency spikes beyond the timeout");
        // Retries of uploads that had already taken effect were answered 5409 and read back (adopted); some 5409s went
        // to an attempt the client had already given up on.
        assert.ok((c.byRoute["POST images/v1 409"] ?? 0) > 0 && (c.byRoute["GET images/v1/{id} 200"] ?? 0) > 0, "adoption after a lost answer");
    });

    it("a second up is a no-op: every Diff says no change and the emulator sees no request at all", async () => {
        emu.resetCounters();
        const result = await driver.up(desired);
        expose(exposure, "second up", driver, result.errors);
        assert.deepEqual(result.errors, []);
        assert.equal(result.counts.same, N);
        assert.equal(Object.keys(result.counts).length, 1, JSON.stringify(result.counts));
        assert.equal(writeRequests(emu), 0);
        assert.equal(emu.counters.requests, 0);
    });

    it("never shows the bootstrap or the scoped token in plain text in the state, the host output or errors", () => {
        assert.deepEqual(exposure.leaks({ bootstrap: BOOTSTRAP, scoped: SCOPED }), []);
        assert.ok(driver.checkpoint().includes(SCOPED), "the raw state holds the token, wrapped as a secret");
    });
});
