// The image lifecycle under the real Pulumi CLI: preview, up, a no-op up, changes at the source, a provider code
// change, refresh after an out-of-band delete, destroy. Asserted on the CLI's own --json output, on the real state
// file and on the emulator's contents and request counts.
import { strict as assert } from "assert";
import { promises as fs } from "fs";
import * as path from "path";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { describeEngine } from "./cli";
import { EngineProject, imageOps, IMAGE_TYPE, nameOf, typeOf } from "./project";

const TOKEN = "engine-lifecycle-token";
const STACK = "lifecycle";

interface Row { id: string; seed: number; hash: string; alt: string }

const writes = (emu: Emulator) => emu.counters.uploads + emu.counters.patches + emu.counters.deletes;
/** What a preview may send: the pre-flight's reads (token, allowance, one listing page), nothing else. */
const PREFLIGHT_READS = ["GET user/tokens/verify 200", "GET images/v1/stats 200", "GET images/v2 200"];
const onlyPreflightReads = (emu: Emulator) => assert.deepEqual(Object.keys(emu.counters.byRoute).sort(), [...PREFLIGHT_READS].sort(), JSON.stringify(emu.counters.byRoute));

describeEngine("real engine: preview, up, re-run, source changes, refresh, destroy", function () {
    this.timeout(300_000);
    let emu: Emulator;
    let origin: ImageOrigin;
    let project: EngineProject;
    let rows: Row[];

    async function writeManifest(): Promise<void> {
        for (const r of rows) origin.register(`/media/${r.id}`, { body: pngBytes(r.seed), contentType: "image/png" });
        await project.writeFile("catalog.ndjson", rows.map((r) => JSON.stringify({
            url: origin.url(`/media/${r.id}`), id: r.id, hash: r.hash, metadata: { alt: r.alt },
        })).join("\n") + "\n");
    }

    before(async () => {
        emu = await startEmulator({ tokens: [TOKEN], rateLimit: { requests: 100_000, windowSeconds: 300 } });
        origin = await startImageOrigin();
        project = await EngineProject.create({ env: { CLOUDFLARE_API_TOKEN: TOKEN } });
        rows = [1, 2, 3, 4, 5].map((n) => ({ id: `p${n}.png`, seed: n, hash: `h${n}`, alt: `photo ${n}` }));
        await writeManifest();
        await project.initStack(STACK, {
            "sourcing-kit:apiBaseUrl": emu.baseUrl,
            "sourcing-kit:accountId": emu.accountId,
            "sourcing-kit:accountHash": emu.accountHash,
            "sourcing-kit:scopedToken": false,
            "sourcing-kit:sources": [{ kind: "manifest", name: "catalog", path: "catalog.ndjson", idPrefix: "cat" }],
        });
    });
    after(async () => {
        await project?.close();
        await origin?.close();
        await emu?.close();
    });

    it("preview of a new stack lists exactly the planned creates, named img-<custom ID>, with only the pre-flight's reads", async () => {
        const { json } = await project.preview(STACK);
        const images = json.steps.filter((s) => typeOf(s.urn) === IMAGE_TYPE);
        assert.deepEqual(imageOps(json.steps), { create: 5 });
        assert.deepEqual(images.map((s) => nameOf(s.urn)).sort(), rows.map((r) => `img-cat/${r.id}`));
        assert.ok(images.every((s) => s.urn.includes("sourcing-kit:index:MigratedImageSet$")), "each image is a child of its set");
        assert.ok((json.diagnostics ?? []).some((d) => d.message.includes("catalog: 5 planned")), JSON.stringify(json.diagnostics));
        assert.deepEqual((json.diagnostics ?? []).filter((d) => d.severity === "warning").map((d) => d.message), [], "no warnings");
        assert.ok((json.diagnostics ?? []).some((d) => d.message.includes("catalog: pre-flight: 5 to upload, 0 already in Cloudflare")), JSON.stringify(json.diagnostics));
        onlyPreflightReads(emu);
        assert.equal(writes(emu), 0);
    });

    it("up uploads every image once; the state file records each under its custom ID", async () => {
        const up = await project.update("up", STACK);
        assert.deepEqual(imageOps(up.done), { create: 5 });
        assert.deepEqual([...emu.images.keys()].sort(), rows.map((r) => `cat/${r.id}`));
        assert.equal(emu.counters.uploads, 5);
        assert.deepEqual([...(await project.stateImages(STACK)).keys()].sort(), rows.map((r) => `cat/${r.id}`));
        assert.equal(emu.images.get("cat/p1.png")!.meta.alt, "photo 1");
        // The SDK's per-resource RPC debug lines (one sequential log RPC each, every input in the text) are not sent.
        const debug = up.events.flatMap((e) => (e.diagnosticEvent?.severity === "debug" ? [e.diagnosticEvent.message] : []));
        assert.ok(debug.length > 0, "the engine does pass debug events on");
        // (The stack resource itself registers before the program runs, so its three lines remain.)
        assert.deepEqual(debug.filter((m) => /RegisterResource RPC|Registering resource/.test(m) && !m.includes("pulumi:pulumi:Stack")), []);
    });

    it("up again with --expect-no-changes succeeds and sends no write request", async () => {
        emu.resetCounters();
        const up = await project.update("up", STACK, ["--expect-no-changes"]);
        assert.deepEqual(imageOps(up.done), { same: 5 });
        assert.equal(writes(emu), 0);
    });

    it("one file's bytes changed, one metadata change, one removed, one added: preview shows replace, update, delete, create", async () => {
        rows[0] = { ...rows[0], seed: 101, hash: "h1-v2" };
        rows[1] = { ...rows[1], alt: "photo two, retouched" };
        rows.splice(2, 1);
        rows.push({ id: "p6.png", seed: 6, hash: "h6", alt: "photo 6" });
        await writeManifest();
        emu.resetCounters();
        const { json } = await project.preview(STACK, ["--diff"]);
        const byName = new Map(json.steps.filter((s) => typeOf(s.urn) === IMAGE_TYPE).map((s) => [nameOf(s.urn), s.op]));
        assert.equal(byName.get("img-cat/p1.png"), "replace");
        assert.equal(byName.get("img-cat/p2.png"), "update");
        assert.equal(byName.get("img-cat/p3.png"), "delete");
        assert.equal(byName.get("img-cat/p6.png"), "create");
        // preview --json lists changes only (sames need --show-sames); the summary counts the rest.
        assert.deepEqual(imageOps(json.steps), { replace: 1, update: 1, delete: 1, create: 1 });
        assert.equal(json.changeSummary?.same, 2 + 2, "2 images, the set and the stack unchanged");
        onlyPreflightReads(emu);
    });

    it("up does exactly that: 2 uploads, 1 metadata PATCH, 2 deletes (the replaced and the removed image)", async () => {
        const up = await project.update("up", STACK);
        const ops = imageOps(up.done);
        assert.equal(ops.update, 1);
        assert.equal(ops.create, 1);
        assert.equal(ops.delete, 1);
        assert.equal(ops.replace, 1);
        assert.equal(emu.counters.uploads, 2);
        assert.equal(emu.counters.patches, 1);
        assert.equal(emu.counters.deletes, 2);
        assert.deepEqual([...emu.images.keys()].sort(), rows.map((r) => `cat/${r.id}`));
        assert.deepEqual(emu.images.get("cat/p1.png")!.bytes, pngBytes(101));
        assert.equal(emu.images.get("cat/p2.png")!.meta.alt, "photo two, retouched");
        assert.deepEqual([...(await project.stateImages(STACK)).keys()].sort(), rows.map((r) => `cat/${r.id}`));
    });

    it("a change of provider code alone shows no change and touches no image", async () => {
        // The serialized provider (the shim's text) is stored in every image's state: change it.
        const shim = path.join(project.root, "provider", "shim.ts");
        const text = await fs.readFile(shim, "utf8");
        await fs.writeFile(shim, text.replace("const load = (): pulumi.dynamic.ResourceProvider => {",
            "const load = (): pulumi.dynamic.ResourceProvider => {\n        // a later release of the kit\n"));
        const before = JSON.stringify([...(await project.stateImages(STACK)).values()].map((r) => r.inputs?.__provider));
        emu.resetCounters();
        const { json } = await project.preview(STACK, ["--show-sames"]);
        assert.deepEqual(imageOps(json.steps), { same: 5 });
        assert.deepEqual(Object.keys(json.changeSummary ?? {}), ["same"]);
        await project.update("up", STACK, ["--expect-no-changes"]);
        assert.equal(writes(emu), 0);
        const after = [...(await project.stateImages(STACK)).values()].map((r) => String(r.inputs?.__provider));
        assert.notEqual(JSON.stringify(after), before, "the new provider text is recorded");
        assert.ok(after.every((p) => p.includes("a later release of the kit")));
    });

    it("refresh after an out-of-band delete drops the image from state; the next up uploads it again", async () => {
        emu.images.delete("cat/p4.png");
        emu.resetCounters();
        const refresh = await project.update("refresh", STACK);
        assert.deepEqual(refresh.failed, []);
        assert.ok(!(await project.stateImages(STACK)).has("cat/p4.png"), "refresh dropped it");
        assert.equal(writes(emu), 0, "refresh only reads");
        const up = await project.update("up", STACK);
        assert.deepEqual(imageOps(up.done), { create: 1, same: 4 });
        assert.equal(emu.counters.uploads, 1);
        assert.ok(emu.images.has("cat/p4.png"));
    });

    it("destroy deletes every image and empties the stack", async () => {
        emu.resetCounters();
        const destroy = await project.update("destroy", STACK);
        assert.deepEqual(imageOps(destroy.done), { delete: 5 });
        assert.equal(emu.images.size, 0);
        assert.equal(emu.counters.deletes, 5);
        assert.deepEqual((await project.state(STACK)).checkpoint.latest?.resources ?? [], []);
    });
});
