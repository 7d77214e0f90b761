// SIGKILL of `pulumi up` halfway through, then the README's recovery commands, with the real CLI: every image
// exactly once in Cloudflare Images and in the state file.
import { strict as assert } from "assert";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { describeEngine } from "./cli";
import { descendants, EngineProject, imageOps, killGroup } from "./project";
import { readmeRecoveryCommands } from "./readme";

const TOKEN = "engine-crash-token";
const STACK = "crash";
const COUNT = 20;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => boolean, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(50);
    }
}

describeEngine("real engine: SIGKILL of pulumi up, then the README's recovery", function () {
    this.timeout(300_000);
    let emu: Emulator;
    let origin: ImageOrigin;
    let project: EngineProject;
    const ids = Array.from({ length: COUNT }, (_, i) => `crash/${String(i).padStart(2, "0")}.png`);
    let landedAtKill = 0;
    let recordedAtKill = 0;

    before(async () => {
        emu = await startEmulator({ tokens: [TOKEN], rateLimit: { requests: 100_000, windowSeconds: 300 } });
        // Slow writes, so the kill lands while uploads are in flight.
        emu.setFaults({ latencyMs: [300, 600], routes: "writes" });
        origin = await startImageOrigin();
        project = await EngineProject.create({ env: { CLOUDFLARE_API_TOKEN: TOKEN } });
        const urls = ids.map((id, i) => {
            origin.register(`/${id}`, { body: pngBytes(500 + i), contentType: "image/png" });
            return origin.url(`/${id}`);
        });
        await project.initStack(STACK, {
            "sourcing-kit:apiBaseUrl": emu.baseUrl,
            "sourcing-kit:accountId": emu.accountId,
            "sourcing-kit:accountHash": emu.accountHash,
            "sourcing-kit:scopedToken": false,
            "sourcing-kit:sources": [{ kind: "urls", name: "crash", urls }],
        });
    });
    after(async () => {
        await project?.close();
        await origin?.close();
        await emu?.close();
    });

    it("a killed up leaves some images uploaded and pending creates in the state file", async () => {
        const run = project.start(["up", "-s", STACK, "--yes", "--skip-preview", "--parallel", "4"]);
        await waitFor("5 images to land", () => emu.images.size >= 5);
        // The CLI's plugins (language host, dynamic provider host) run in process groups of their own: note them first.
        const plugins = descendants(run.child.pid!);
        assert.ok(plugins.length >= 2, `the CLI runs its plugins as child processes (${plugins.length} found)`);
        process.kill(run.child.pid!, "SIGKILL");
        const result = await run.done;
        assert.equal(result.signal, "SIGKILL");
        // They outlive the CLI for a moment (in-flight uploads finish); then stop them, as the crash would have.
        await sleep(1000);
        killGroup(run.child, "SIGKILL", plugins);
        await sleep(500);
        landedAtKill = emu.images.size;
        assert.ok(landedAtKill >= 5 && landedAtKill < COUNT, `${landedAtKill} of ${COUNT} landed`);
        const state = await project.state(STACK);
        const pending = state.checkpoint.latest?.pending_operations ?? [];
        assert.ok(pending.length > 0, "the engine recorded the creates in flight as pending operations");
        recordedAtKill = (await project.stateImages(STACK)).size;
        // Uploads in flight when the CLI died still landed (the provider host finished them): images no state knows.
        assert.ok(recordedAtKill < landedAtKill, `${landedAtKill} landed, ${recordedAtKill} recorded, ${pending.length} pending`);
        console.log(`      killed with ${landedAtKill} of ${COUNT} images landed, ${recordedAtKill} recorded, ${pending.length} pending creates`);
    });

    it("the README's recovery commands finish the migration: each image uploaded exactly once, state equal to the emulator", async () => {
        emu.setFaults(undefined);
        const before = emu.counters.uploads;
        const commands = await readmeRecoveryCommands();
        for (const args of commands) {
            await project.pulumi([...args, "-s", STACK, "--yes"]);
        }
        const state = await project.stateImages(STACK);
        assert.deepEqual([...emu.images.keys()].sort(), ids);
        assert.deepEqual([...state.keys()].sort(), ids);
        // Every upload the emulator accepted, over both runs, was a different image: none twice.
        assert.equal(emu.counters.uploads, COUNT, `uploads: ${before} before recovery, ${emu.counters.uploads} after`);
        assert.deepEqual((await project.state(STACK)).checkpoint.latest?.pending_operations ?? [], []);
        const adopted = [...state.values()].filter((r) => r.outputs?.adopted === true).length;
        assert.equal(adopted, landedAtKill - recordedAtKill, "the images that landed unrecorded were adopted, not uploaded again");
        const up = await project.update("up", STACK, ["--expect-no-changes"]);
        assert.deepEqual(imageOps(up.done), { same: COUNT });
    });
});
