// Batch mode through the project's own program and the real CLI: a set switched from per-image resources to
// batches, to another batch size, and back, while the engine runs the old and new resources' steps, uploads and
// deletes nothing that is still planned (counted in the emulator); a re-run changes nothing; a changed image is the
// only one preview --diff names and up re-uploads. Destroy of batches: test/provider/image-batch-host.test.ts.
import { strict as assert } from "assert";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { describeEngine } from "./cli";
import { EngineProject, IMAGE_TYPE, typeOf } from "./project";

const TOKEN = "engine-batch-mode-token";
const STACK = "batchmode";
const BATCH_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImageBatch";
const IDS = Array.from({ length: 12 }, (_, i) => `lib/p${String(i).padStart(2, "0")}.png`);

describeEngine("real engine: batch mode of MigratedImageSet, and switching modes", function () {
    this.timeout(240_000);
    let emu: Emulator;
    let origin: ImageOrigin;
    let project: EngineProject;

    const configure = (set: Record<string, unknown>) => project.writeStackConfig(STACK, {
        "sourcing-kit:apiBaseUrl": emu.baseUrl,
        "sourcing-kit:accountId": emu.accountId,
        "sourcing-kit:accountHash": emu.accountHash,
        "sourcing-kit:scopedToken": false,
        "sourcing-kit:preflight": "off",
        "sourcing-kit:rateLimit": { requests: 100_000, windowSeconds: 300 },
        "sourcing-kit:sources": [{ kind: "manifest", name: "lib", path: "lib.ndjson", idPrefix: "lib", ...set }],
    });
    const writeManifest = (hashes: Record<number, string> = {}) => project.writeFile("lib.ndjson", IDS.map((id, i) =>
        JSON.stringify({ url: origin.url(`/m/${i}.png`), id: id.slice(4), hash: hashes[i] ?? `h${i}` })).join("\n") + "\n");
    const resources = async () => ((await project.state(STACK)).checkpoint.latest?.resources ?? []);
    /** Up, then what it did to Cloudflare: uploads and deletes (PATCHes are owner-tag handovers). */
    async function up(): Promise<{ uploads: number; deletes: number; patches: number }> {
        emu.resetCounters();
        await project.update("up", STACK);
        assert.deepEqual([...emu.images.keys()].sort(), IDS, "every planned image still in Cloudflare");
        return { uploads: emu.counters.uploads, deletes: emu.counters.deletes, patches: emu.counters.patches };
    }

    before(async () => {
        emu = await startEmulator({ tokens: [TOKEN], rateLimit: { requests: 100_000, windowSeconds: 300 } });
        origin = await startImageOrigin();
        project = await EngineProject.create({ env: { CLOUDFLARE_API_TOKEN: TOKEN } });
        IDS.forEach((id, i) => origin.register(`/m/${i}.png`, { body: pngBytes(i + 1), contentType: "image/png" }));
        await writeManifest();
        await configure({});
        await project.pulumi(["stack", "init", STACK, "--secrets-provider", "passphrase"]);
    });
    after(async () => {
        await project?.close();
        await origin?.close();
        await emu?.close();
    });

    it("per-image, then batches of 5, then batches of 3, then per-image again: nothing uploaded twice, nothing deleted", async () => {
        assert.deepEqual(await up(), { uploads: 12, deletes: 0, patches: 0 });
        assert.equal((await resources()).filter((r) => typeOf(r.urn) === IMAGE_TYPE).length, 12);

        await configure({ mode: "batch", batchSize: 5 });
        const toBatches = await up();
        assert.deepEqual({ uploads: toBatches.uploads, deletes: toBatches.deletes }, { uploads: 0, deletes: 0 });
        const batches = (await resources()).filter((r) => r.type === BATCH_TYPE);
        assert.equal((await resources()).filter((r) => typeOf(r.urn) === IMAGE_TYPE).length, 0, "the per-image resources are gone");
        assert.ok(batches.length >= 3, `${batches.length} batches`);
        const held = batches.flatMap((b) => Object.keys((b.outputs as { images: Record<string, unknown> }).images)).sort();
        assert.deepEqual(held, IDS, "each image in exactly one batch");

        await configure({ mode: "batch", batchSize: 3 });
        const resized = await up();
        assert.deepEqual({ uploads: resized.uploads, deletes: resized.deletes }, { uploads: 0, deletes: 0 });
        assert.ok((await resources()).filter((r) => r.type === BATCH_TYPE).length >= 4);

        const again = await up();
        assert.deepEqual(again, { uploads: 0, deletes: 0, patches: 0 }, "a re-run changes nothing");

        // One image's bytes change at the source: preview --diff names exactly that image, up re-uploads only it.
        origin.register("/m/7.png", { body: pngBytes(77), contentType: "image/png" });
        await writeManifest({ 7: "h7-new" });
        const preview = await project.pulumi(["preview", "--diff", "-s", STACK]);
        // The CLI prints the batch's images map: a changed image's entry is marked ~ (added +, removed -).
        const named = [...preview.stdout.matchAll(/^\s+([~+-]) (lib\/p\d+\.png): \{/gm)].map((m) => `${m[1]} ${m[2]}`);
        assert.deepEqual(named, ["~ lib/p07.png"], preview.stdout);
        assert.match(preview.stdout, /~ sourceHash: "h7" => "h7-new"/, preview.stdout);
        const changed = await up();
        assert.deepEqual(changed, { uploads: 1, deletes: 1, patches: 0 }, "the old copy deleted, the new bytes uploaded, nothing else");

        await configure({});
        const back = await up();
        assert.deepEqual({ uploads: back.uploads, deletes: back.deletes }, { uploads: 0, deletes: 0 });
        assert.equal((await resources()).filter((r) => typeOf(r.urn) === IMAGE_TYPE).length, 12);
        assert.equal((await resources()).filter((r) => r.type === BATCH_TYPE).length, 0);
    });
});
