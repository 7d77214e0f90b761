// Issue 8.2: the provider host is SIGKILLed at seeded random points during creates, replaces, deletes, redirect-row
// writes and destroy; a rerun on a new host converges: each desired custom ID exactly once, nothing orphaned, the
// D1 redirect table equal to the desired mapping, and destroy leaves the account empty.
import { strict as assert } from "assert";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, startImageOrigin } from "../emulator/fixtures";
import { DesiredResource, EngineDriver, RunResult } from "../host/engine-driver";
import { startProviderHost } from "../host/provider-host";
import {
    auditImages, captureProviders, CLEAN_AUDIT, crashWhen, expose, Exposure, GENEROUS_RATE_LIMIT, imageResource,
    providerConfig, rowsResource, secret, seededRandom, SerializedProvider, sleep, SOAK,
} from "./harness";
import { DATABASE_ID, RedirectWorker, startRedirectWorker } from "./redirect-worker";

const M = SOAK ? 300 : 40;
/** Seeds of the crash points: one sequence in `npm test`, three in `npm run soak`. */
const SEEDS = SOAK ? [8202, 8203, 8204] : [8202];
const BOOTSTRAP = "tok-bootstrap-crash-4be20c7d19";
const SCOPED = "tok-scoped-crash-a83f5d0e66";
/** Upper bound of the emulator's write latency: after a kill, writes already sent land within it. */
const MAX_LATENCY_MS = 200;

for (const seed of SEEDS) describe(`reliability: the provider host killed mid-run (seed ${seed})`, function () {
    this.timeout(SOAK ? 1_800_000 : 180_000);
    let providers: { image: SerializedProvider; rows: SerializedProvider };
    let worker: RedirectWorker;
    let emu: Emulator;
    let origin: ImageOrigin;
    let driver: EngineDriver;
    const exposure = new Exposure();
    const random = seededRandom(seed);
    const pick = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
    const crashes: string[] = [];

    // The program's desired state, changed step by step.
    const live = new Set<number>(Array.from({ length: M }, (_, i) => i));
    const version = new Map<number, number>();
    let rowsOn = false;
    const aliases = new Set<number>();

    const imageId = (i: number) => `crash/${i % 4}/img-${i}.png`;
    const deliveryUrl = (i: number) => `https://imagedelivery.net/${emu.accountHash}/${imageId(i)}/public`;
    const mapping = (): Record<string, string> => {
        const rows: Record<string, string> = {};
        for (const i of live) {
            rows[`/old/img-${i}.jpg`] = deliveryUrl(i);
            if (aliases.has(i)) rows[`/alias/${i}.jpg`] = deliveryUrl(i);
        }
        return rows;
    };
    const desired = (): DesiredResource[] => {
        const images = [...live].map((i) => imageResource(providers.image, `img-${i}`, {
            accountId: emu.accountId, imageId: imageId(i), url: origin.url(`/img/${i + 1000 * (version.get(i) ?? 0)}.png`),
            sourceHash: `sha256-crash-${i}-v${version.get(i) ?? 0}`, apiBaseUrl: emu.baseUrl, apiToken: secret(SCOPED),
        }));
        if (!rowsOn) return images;
        const shards: Record<string, Record<string, string>> = { "rows-0": {}, "rows-1": {} };
        for (const [path, location] of Object.entries(mapping())) shards[`rows-${path.length % 2}`][path] = location;
        const rows = Object.entries(shards).map(([shard, r]) => rowsResource(providers.rows, shard, {
            accountId: emu.accountId, databaseId: DATABASE_ID, shard, rows: r, apiBaseUrl: emu.baseUrl, apiToken: secret(SCOPED),
        }));
        return [...images, ...rows];
    };

    async function newHost(): Promise<void> {
        const host = await startProviderHost();
        exposure.watch(`host ${crashes.length} output`, host.output);
        await driver.attach(host);
    }

    /** Runs `up` (or destroy), kills the host when `when()` holds, lets in-flight writes land, and reruns on a new host. */
    async function crashAndRerun(point: string, when: () => boolean, run: () => Promise<RunResult> = () => driver.up(desired())): Promise<RunResult> {
        emu.resetCounters();
        const { result, killed } = await crashWhen(driver, when, run);
        expose(exposure, `${point} crashed`, driver, result.errors);
        assert.ok(killed, `the host was killed during ${point}`);
        assert.ok(result.errors.length > 0, `${point}: the steps in flight failed with the host`);
        await sleep(MAX_LATENCY_MS * 2);
        const after = auditImages(emu, driver, desired());
        crashes.push(`${point}: ${after.orphaned.length} images landed without state, ${after.lost.length} missing, ` +
            `${Object.keys(await worker.rows()).length} rows in D1`);
        await newHost();
        const rerun = await run();
        expose(exposure, `${point} rerun`, driver, rerun.errors);
        assert.deepEqual(rerun.errors, []);
        return rerun;
    }

    /** The invariants after a rerun, and one more `up` that is a no-op (every Diff "no change", no request). */
    async function assertConverged(): Promise<void> {
        assert.deepEqual(auditImages(emu, driver, desired()), CLEAN_AUDIT);
        assert.deepEqual(await worker.rows(), rowsOn ? mapping() : {});
        const requests = emu.counters.requests;
        const again = await driver.up(desired());
        assert.deepEqual(again.errors, []);
        assert.deepEqual(again.counts, { same: desired().length });
        assert.equal(emu.counters.requests, requests);
    }

    before(async () => {
        providers = await captureProviders();
        worker = await startRedirectWorker({ FALLBACK: "404", CACHE_TTL: "0", NEGATIVE_CACHE_TTL: "0" });
        // Latency on writes keeps them in flight long enough to kill the host in the middle of them.
        emu = await startEmulator({
            tokens: [SCOPED, BOOTSTRAP], rateLimit: GENEROUS_RATE_LIMIT, d1: worker.backend, seed,
            faults: { latencyMs: [60, MAX_LATENCY_MS], routes: "writes" },
        });
        origin = await startImageOrigin();
        driver = await EngineDriver.start(providerConfig(BOOTSTRAP), undefined, 8);
        exposure.watch("first host output", driver.host.output);
    });

    after(async () => {
        await driver?.host.kill();
        await emu?.close();
        await origin?.close();
        await worker?.dispose();
    });

    it("1. killed during creates: the rerun adopts what landed and uploads the rest, once each", async () => {
        const k = pick(3, M - 10);
        await crashAndRerun(`creates (after ${k} uploads)`, () => emu.counters.uploads >= k);
        await assertConverged();
        assert.equal(emu.counters.uploads, M, "one successful upload per image over both runs");
    });

    it("2. killed during replaces (delete before create, same custom ID): every ID exists once with the new source", async () => {
        const changed = [...live].filter(() => random() < 0.25).slice(0, 10);
        for (const i of changed) version.set(i, 1);
        const k = pick(1, Math.max(1, changed.length - 2));
        await crashAndRerun(`replaces (after ${k} deletes)`, () => emu.counters.deletes >= k);
        await assertConverged();
    });

    it("3. killed during deletes of images no longer in the source: none is left behind", async () => {
        const removed = [...live].filter(() => random() < 0.3).slice(0, 12);
        for (const i of removed) live.delete(i);
        const k = pick(1, removed.length - 2);
        await crashAndRerun(`deletes (after ${k} deletes)`, () => emu.counters.deletes >= k);
        await assertConverged();
        for (const i of removed) assert.ok(!emu.images.has(imageId(i)));
    });

    it("4. killed during redirect-row writes: the D1 table equals the desired mapping after the rerun", async () => {
        rowsOn = true;
        // Killed right after a shard's D1 batch was applied, before (or while) its answer reaches the host.
        const q0 = worker.backend.queries;
        await crashAndRerun("row creates (after the first D1 batch applied)", () => worker.backend.queries > q0);
        await assertConverged();
        const res = await worker.fetch(`http://old.test/old/img-${[...live][0]}.jpg`);
        assert.equal(res.status, 301);
    });

    it("5. killed during a redirect-row update (rows added, moved and removed): the table equals the new mapping", async () => {
        for (const i of [...live].filter(() => random() < 0.3)) aliases.add(i);
        const removed = [...live].slice(0, 3);
        for (const i of removed) live.delete(i);
        const q0 = worker.backend.queries;
        await crashAndRerun("row updates (after the first D1 batch applied)", () => worker.backend.queries > q0);
        await assertConverged();
        assert.equal((await worker.fetch(`http://old.test/old/img-${removed[0]}.jpg`)).status, 404);
    });

    it("6. killed during destroy: a second destroy leaves the account empty (no images, no rows)", async () => {
        const k = pick(2, 10);
        const rerun = await crashAndRerun(`destroy (after ${k} deletes)`, () => emu.counters.deletes >= k, () => driver.destroy());
        assert.ok((rerun.counts.delete ?? 0) > 0);
        assert.equal(driver.state.size, 0);
        assert.equal(emu.images.size, 0);
        assert.deepEqual(await worker.rows(), {});
        console.log(`      survived ${crashes.length} SIGKILLs:\n${crashes.map((c) => `        - ${c}`).join("\n")}`);
    });

    it("never shows a token in plain text in the state, the hosts' output or errors", () => {
        assert.deepEqual(exposure.leaks({ bootstrap: BOOTSTRAP, scoped: SCOPED }), []);
    });
});
