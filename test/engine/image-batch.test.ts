// CloudflareImageBatch under the real Pulumi CLI: a partial failure exits non-zero naming the image and keeps the
// others; the fix sends only that image. The project copy runs a small program of its own (index.ts replaced) that
// declares the resources listed in plan.json. Moves between batches and per-image resources, through the project's
// own program: batch-mode.test.ts.
import { strict as assert } from "assert";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { describeEngine } from "./cli";
import { EngineProject } from "./project";

const TOKEN = "engine-batch-token-4b7d";
const STACK = "batch";
const BATCH_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImageBatch";

const PROGRAM = `import * as fs from "fs";
import { CloudflareImage } from "./provider/image";
import { CloudflareImageBatch } from "./provider/image-batch";
const plan = JSON.parse(fs.readFileSync("plan.json", "utf8"));
for (const [name, images] of Object.entries(plan.batches ?? {})) new CloudflareImageBatch(name, { accountId: plan.accountId, images: images as never });
for (const [name, image] of Object.entries(plan.images ?? {})) new CloudflareImage(name, { accountId: plan.accountId, ...(image as never) });
`;

describeEngine("real engine: CloudflareImageBatch", function () {
    this.timeout(180_000);
    let emu: Emulator;
    let origin: ImageOrigin;
    let project: EngineProject;
    const entry = (n: number) => ({ url: origin.url(`/img/${n}.png`), sourceHash: `png-${n}` });
    const ids = ["e/1.png", "e/2.png", "e/3.png", "e/4.png"];
    const all = () => Object.fromEntries(ids.map((id, i) => [id, entry(i + 1)]));
    const plan = (p: { batches?: Record<string, unknown>; images?: Record<string, unknown> }) =>
        project.writeFile("plan.json", JSON.stringify({ accountId: emu.accountId, ...p }));
    const up = () => project.pulumi(["up", "--yes", "--skip-preview", "-s", STACK], { allowFailure: true });
    const batchOutputs = async (name: string) => (await project.state(STACK)).checkpoint.latest!.resources!
        .find((r) => r.type === BATCH_TYPE && r.urn.endsWith(`::${name}`))?.outputs as { images: Record<string, unknown> } | undefined;

    before(async () => {
        emu = await startEmulator({ tokens: [TOKEN], rateLimit: { requests: 100_000, windowSeconds: 300 } });
        origin = await startImageOrigin();
        project = await EngineProject.create({ env: { CLOUDFLARE_API_TOKEN: TOKEN } });
        await project.writeFile("index.ts", PROGRAM);
        await project.initStack(STACK, {
            "sourcing-kit:apiBaseUrl": emu.baseUrl,
            "sourcing-kit:rateLimit": { requests: 100_000, windowSeconds: 300 },
        });
    });
    after(async () => {
        await project?.close();
        await origin?.close();
        await emu?.close();
    });

    it("an up with one failing image exits non-zero naming it and keeps the others; the fix sends only that image", async () => {
        await plan({ batches: { b1: { ...all(), "e/bad.png": { url: origin.url("/later/bad.png"), sourceHash: "bad-1" } } } });
        const failed = await up();
        assert.notEqual(failed.code, 0);
        assert.match(failed.stdout, /image e\/bad\.png: /, failed.stdout);
        assert.equal(emu.counters.uploads, 4);
        assert.deepEqual(Object.keys((await batchOutputs("b1"))!.images).sort(), ids);

        origin.register("/later/bad.png", { body: pngBytes(9), contentType: "image/png" });
        emu.resetCounters();
        const fixed = await up();
        assert.equal(fixed.code, 0, fixed.stdout);
        assert.equal(emu.counters.uploads, 1);
        assert.equal(Object.keys((await batchOutputs("b1"))!.images).length, 5);
    });
});
