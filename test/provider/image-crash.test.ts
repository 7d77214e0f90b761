import { strict as assert } from "assert";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { DesiredResource, EngineDriver, unwrapSecrets } from "../host/engine-driver";
import { Props, startProviderHost } from "../host/provider-host";
import { CapturedRegistration, captureImageRegistration } from "../host/serialized-provider";
import { desiredImage } from "../host/image-resources";

const TOKEN = "tok-crash-0b5e93c7aa";
const M = 24;

const outputsOf = (d: EngineDriver, urn: string) => unwrapSecrets(d.state.get(urn)!.outputs) as Props;

describe("CloudflareImage in the real host: 7. crash while creates are in flight", function () {
    let reg: CapturedRegistration;
    let emu: Emulator;
    let origin: ImageOrigin;
    let driver: EngineDriver;
    const hostOutputs: Array<() => string> = [];
    const seen: string[] = [];

    const image = (i: number): DesiredResource => desiredImage(reg, `crash-${i}`, {
        accountId: "acc-test", imageId: `s7/crash-${i}.png`, url: origin.url(i < M ? `/slow/${i}.png` : `/img/${i}.png`), sourceHash: `png-${i}`,
        apiBaseUrl: emu.baseUrl, apiToken: TOKEN,
    });
    let all: DesiredResource[] = [];

    async function up(resources: DesiredResource[]) {
        const result = await driver.up(resources);
        seen.push(driver.plainTextCheckpoint(), ...result.errors.map((e) => e.message));
        return result;
    }

    before(async () => {
        reg = await captureImageRegistration();
        emu = await startEmulator({ tokens: [TOKEN] });
        origin = await startImageOrigin();
        // A slow origin keeps each upload inside Cloudflare (fetching the source) long enough to kill the host then:
        // the upload completes, its answer has nobody to go to.
        for (let i = 0; i < M; i++) origin.register(`/slow/${i}.png`, { body: pngBytes(i), contentType: "image/png", delayMs: 250 + 25 * (i % 8) });
        driver = await EngineDriver.start({});
        hostOutputs.push(driver.host.output);
        all = Array.from({ length: M }, (_, i) => image(i));
    });

    after(async () => {
        await driver?.host.kill();
        await emu?.close();
        await origin?.close();
    });

    it("a rerun on a new host adopts what reached Cloudflare: every custom ID exists once, nothing orphaned", async () => {
        const run = up(all);
        // Kill once some creates are recorded and at least 4 more are inside Cloudflare, not yet answered.
        const inFlight = () => emu.counters.requests - emu.counters.uploads;
        while (driver.state.size < 2 || inFlight() < 4) await new Promise((r) => setTimeout(r, 5));
        await driver.host.kill("SIGKILL");
        const crashed = await run;
        assert.ok(crashed.errors.length > 0, "the in-flight creates failed with the host");
        await new Promise((r) => setTimeout(r, 600)); // uploads already inside Cloudflare complete without an answer
        const recorded = new Set([...driver.state.keys()].map((urn) => outputsOf(driver, urn).imageId));
        const orphans = [...emu.images.keys()].filter((id) => !recorded.has(id));
        console.log(`      killed with ${recorded.size} creates recorded, ${orphans.length} landed without state, ` +
            `${M - recorded.size - orphans.length} never sent`);
        assert.ok(orphans.length > 0, "some creates reached Cloudflare without reaching the state");

        const host = await startProviderHost();
        hostOutputs.push(host.output);
        await driver.attach(host);
        emu.resetCounters();
        const rerun = await up(all);
        assert.deepEqual(rerun.errors, []);
        assert.equal(rerun.counts.same ?? 0, recorded.size);
        assert.equal(rerun.counts.create, M - recorded.size);
        const adopted = all.filter((d) => outputsOf(driver, d.urn).adopted === true).map((d) => d.inputs.imageId);
        assert.deepEqual(adopted.sort(), orphans.sort());
        assert.equal(emu.counters.uploads, M - recorded.size - orphans.length);
        assert.deepEqual([...emu.images.keys()].sort(), all.map((d) => d.inputs.imageId).sort());
    });

    it("an upload whose answer is lost is retried, answered 5409 with our hash, and adopted", async () => {
        emu.setFaults({ afterWriteRate: 1, afterWriteKind: "drop", routes: "writes" });
        emu.resetCounters();
        const extra = [0, 1, 2, 3].map((i) => image(100 + i));
        const result = await up([...all, ...extra]);
        assert.deepEqual(result.errors, []);
        assert.equal(result.counts.create, 4);
        assert.equal(emu.counters.afterWriteFaults, 4);
        assert.equal(emu.counters.uploads, 4);
        for (const d of extra) assert.equal(outputsOf(driver, d.urn).adopted, true);
        assert.equal(emu.images.size, M + 4);
        emu.setFaults(undefined);
    });

    it("never shows the token in plain text in the state, the host output or errors", () => {
        const everything = [...seen, ...hostOutputs.map((o) => o())].join("\n");
        assert.ok(!everything.includes(TOKEN));
    });
});
