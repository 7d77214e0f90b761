import { strict as assert } from "assert";
import { promises as fs } from "fs";
import * as os from "os";
import * as path from "path";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { DesiredResource, EngineDriver, secret } from "../host/engine-driver";
import { Props } from "../host/provider-host";
import { CapturedRegistration, captureBatchRegistration } from "../host/serialized-provider";
import { deliveryUrlFromTemplate } from "../../provider/image-batch";
import { OWNER_KEY, SOURCE_HASH_KEY } from "../../provider/source-metadata";

const TOKEN = "tok-batch-7c1e90d2aa";
const TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImageBatch";
const urnOf = (name: string) => `urn:pulumi:host-test::sourcing-kit::${TYPE}::${name}`;
const ownerOf = (name: string) => `host-test/${name}`;

describe("CloudflareImageBatch in the real dynamic provider host", function () {
    let reg: CapturedRegistration;
    let emu: Emulator;
    let origin: ImageOrigin;
    let driver: EngineDriver;
    let dir: string;
    const seen: string[] = [];

    const entry = (n: number, over: Props = {}): Props => ({ url: origin.url(`/img/${n}.png`), sourceHash: `png-${n}`, ...over });
    const batch = (name: string, images: Record<string, Props>, over: Props = {}): DesiredResource => ({
        urn: urnOf(name),
        additionalSecretOutputs: reg.additionalSecretOutputs,
        inputs: {
            __provider: reg.inputs.__provider, accountId: "acc-test", owner: ownerOf(name), images,
            apiBaseUrl: emu.baseUrl, apiToken: secret(TOKEN), ...over,
        },
    });
    const range = (from: number, to: number, prefix = "b") =>
        Object.fromEntries(Array.from({ length: to - from }, (_, i) => [`${prefix}/${from + i}.png`, entry(from + i)]));
    const outputsOf = (name: string) => driver.state.get(urnOf(name))?.outputs as { images: Record<string, Props>; deliveryUrlTemplate?: string } | undefined;
    /** Every batch the "program" declares now, by name: each up sends them all, as a program would. */
    const fleet = new Map<string, DesiredResource>();
    async function up(resources: DesiredResource[], drop: string[] = []) {
        for (const name of drop) fleet.delete(name);
        for (const r of resources) fleet.set(r.urn, r);
        const result = await driver.up([...fleet.values()]);
        seen.push(driver.plainTextCheckpoint(), ...result.errors.map((e) => e.message));
        return result;
    }

    before(async () => {
        reg = await captureBatchRegistration();
        emu = await startEmulator({ tokens: [TOKEN], rateLimit: { requests: 100_000, windowSeconds: 300 } });
        origin = await startImageOrigin();
        // The emulator's budget is generous; so is the provider's, so that pacing does not slow the test down.
        driver = await EngineDriver.start({ "sourcing-kit:rateLimit": JSON.stringify({ requests: 100_000, windowSeconds: 300 }) });
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "sk-batch-"));
    });
    after(async () => {
        assert.ok(!driver.host.output().includes(TOKEN), "the host never prints the token");
        await driver?.host.kill();
        await emu?.close();
        await origin?.close();
        await fs.rm(dir, { recursive: true, force: true });
    });

    it("the class registers the shim, owner <stack>/<name> and apiToken as a secret output", () => {
        assert.equal(reg.type, TYPE);
        assert.equal(reg.inputs.owner, "host-test/probe-batch");
        assert.match(String(reg.inputs.__provider), /image-batch-provider/);
        assert.deepEqual(reg.additionalSecretOutputs, ["apiToken"]);
    });

    it("check names the image and property of each bad input, with no request sent", async () => {
        emu.resetCounters();
        const bad = batch("bad", {
            "ok.png": entry(1), "/lead.png": entry(2), "nohash.png": { url: origin.url("/img/3.png") },
            "meta.png": entry(4, { metadata: { [OWNER_KEY]: "x" } }), "extra.png": entry(5, { accountId: "x" }),
        });
        const res = await driver.host.check(bad.urn, {}, { ...bad.inputs, apiToken: TOKEN });
        const props = [...new Set(res.failures.map((f) => f.property))].sort();
        assert.deepEqual(props, ['images["/lead.png"]', 'images["extra.png"].accountId', 'images["meta.png"].metadata._sko', 'images["nohash.png"].sourceHash']);
        assert.equal(emu.counters.requests, 0);
    });

    it("create uploads each image once and adopts one already there with the same hash; a second up sends nothing", async () => {
        emu.images.set("b/0.png", {
            id: "b/0.png", filename: "0.png", meta: { [SOURCE_HASH_KEY]: "png-0" }, requireSignedURLs: false,
            uploaded: new Date().toISOString(), bytes: pngBytes(0), contentType: "image/png",
        });
        emu.resetCounters();
        const first = await up([batch("one", range(0, 12))]);
        assert.deepEqual(first.errors, []);
        assert.equal(emu.counters.uploads, 11);
        assert.equal(emu.counters.patches, 1, "the adopted image gets our owner tag");
        const outs = outputsOf("one")!;
        assert.equal(Object.keys(outs.images).length, 12);
        assert.deepEqual(outs.images["b/0.png"], { sourceHash: "png-0", adopted: true });
        assert.deepEqual(outs.images["b/1.png"], { sourceHash: "png-1" });
        for (let i = 0; i < 12; i++) assert.equal(emu.images.get(`b/${i}.png`)!.meta[OWNER_KEY], ownerOf("one"));
        assert.equal(deliveryUrlFromTemplate(outs.deliveryUrlTemplate!, "b/5.png"), "https://imagedelivery.net/hash-test/b/5.png/public");

        emu.resetCounters();
        const second = await up([batch("one", range(0, 12))]);
        assert.deepEqual(second.counts, { same: 1 });
        assert.equal(emu.counters.requests, 0);
    });

    it("update: an added image is uploaded, a removed one deleted, a new hash re-uploads only that image, new metadata is a PATCH", async () => {
        const images = range(0, 12);
        delete images["b/11.png"];
        images["b/12.png"] = entry(12);
        images["b/3.png"] = entry(103, { sourceHash: "png-103" });
        images["b/4.png"] = entry(4, { metadata: { alt: "four" } });
        emu.resetCounters();
        const result = await up([batch("one", images)]);
        assert.deepEqual(result.errors, []);
        assert.deepEqual(result.counts, { update: 1 });
        assert.equal(emu.counters.uploads, 2, "b/12 and the new bytes of b/3");
        assert.equal(emu.counters.deletes, 2, "b/11 and the old bytes of b/3");
        assert.equal(emu.counters.patches, 1);
        assert.ok(!emu.images.has("b/11.png"));
        assert.deepEqual(emu.images.get("b/3.png")!.bytes, pngBytes(103));
        assert.deepEqual(emu.images.get("b/4.png")!.meta, { alt: "four", [SOURCE_HASH_KEY]: "png-4", [OWNER_KEY]: ownerOf("one") });
        assert.ok(outputsOf("one")!.images["b/4.png"].meta, "a metadata digest is stored");
    });

    it("conflicts follow onConflict: adopt refuses a different image (naming it), overwrite replaces only it", async () => {
        emu.images.set("c/taken.png", {
            id: "c/taken.png", filename: "t.png", meta: { [SOURCE_HASH_KEY]: "someone-else" }, requireSignedURLs: false,
            uploaded: new Date().toISOString(), bytes: pngBytes(99), contentType: "image/png",
        });
        const images = { "c/free.png": entry(20), "c/taken.png": entry(21) };
        emu.resetCounters();
        const refused = await up([batch("conf", images)]);
        assert.equal(refused.errors.length, 1);
        const state = driver.state.get(urnOf("conf"))!;
        assert.deepEqual(Object.keys((state.outputs as { images: Props }).images), ["c/free.png"]);
        assert.equal(state.initErrors!.length, 2);
        assert.match(state.initErrors![1], /^image c\/taken\.png: .*a different image already exists.*"someone-else".*onConflict: overwrite/);

        const failing = await up([batch("conf", images, { onConflict: "fail" })]);
        assert.match(driver.state.get(urnOf("conf"))!.initErrors![1], /^image c\/taken\.png: .*onConflict is fail/);
        assert.equal(failing.errors.length, 1);

        emu.resetCounters();
        const overwritten = await up([batch("conf", images, { onConflict: "overwrite" })]);
        assert.deepEqual(overwritten.errors, []);
        assert.equal(emu.counters.uploads, 1, "only the conflicting image is sent");
        assert.equal(emu.counters.deletes, 1);
        assert.deepEqual(emu.images.get("c/taken.png")!.bytes, pngBytes(21));
        assert.equal(driver.state.get(urnOf("conf"))!.initErrors, undefined);
    });

    it("a partial failure keeps the images that landed; the retry sends only the failed ones", async () => {
        const file = path.join(dir, "later.png");
        const images = { ...range(30, 34, "p"), "p/file.png": { filePath: file, sourceHash: "file-1" }, "p/gone.png": { url: origin.url("/later/gone.png"), sourceHash: "g-1" } };
        emu.resetCounters();
        const first = await up([batch("part", images)]);
        assert.equal(first.errors.length, 1);
        assert.equal(emu.counters.uploads, 4);
        const state = driver.state.get(urnOf("part"))!;
        assert.deepEqual(Object.keys((state.outputs as { images: Props }).images).sort(), ["p/30.png", "p/31.png", "p/32.png", "p/33.png"]);
        assert.equal(state.outputs.__provider, reg.inputs.__provider, "__provider is kept, so refresh and destroy work");
        assert.deepEqual(state.initErrors!.slice(1).map((r) => r.split(":")[0]).sort(), ["image p/file.png", "image p/gone.png"]);

        await fs.writeFile(file, pngBytes(40));
        origin.register("/later/gone.png", { body: pngBytes(41), contentType: "image/png" });
        emu.resetCounters();
        const retry = await up([batch("part", images)]);
        assert.deepEqual(retry.errors, []);
        assert.equal(retry.counts.update, 1, "diff found no change; the init errors make it an update");
        assert.equal(emu.counters.uploads, 2);
        assert.equal(Object.keys(outputsOf("part")!.images).length, 6);
    });

    it("a create where nothing lands stores nothing (a plain error)", async () => {
        const result = await up([batch("none", { "n/x.png": { url: origin.url("/nowhere.png"), sourceHash: "x" } })]);
        assert.equal(result.errors.length, 1);
        assert.match(result.errors[0].message, /no image of the batch landed[\s\S]*image n\/x\.png/);
        assert.ok(!driver.state.has(urnOf("none")));
        fleet.delete(urnOf("none"));
    });

    it("refresh drops images deleted out of band and records changed hashes; the next up re-uploads only those", async () => {
        const wanted = [batch("part", { ...range(30, 34, "p"), "p/file.png": { filePath: path.join(dir, "later.png"), sourceHash: "file-1" }, "p/gone.png": { url: origin.url("/later/gone.png"), sourceHash: "g-1" } })];
        emu.images.delete("p/30.png");
        emu.images.get("p/31.png")!.meta[SOURCE_HASH_KEY] = "changed-elsewhere";
        emu.resetCounters();
        const refreshed = await driver.refresh();
        assert.deepEqual(refreshed.errors, []);
        const images = outputsOf("part")!.images;
        assert.ok(!("p/30.png" in images));
        assert.equal(images["p/31.png"].sourceHash, "changed-elsewhere");
        assert.equal(emu.counters.uploads + emu.counters.deletes + emu.counters.patches, 0);
        emu.resetCounters();
        const result = await up(wanted);
        assert.deepEqual(result.errors, []);
        assert.equal(emu.counters.uploads, 2);
        assert.equal(emu.images.get("p/31.png")!.meta[SOURCE_HASH_KEY], "png-31");
    });

    it("images moving between batches in one up (a resplit, a rename) are neither uploaded nor deleted", async () => {
        const all = range(50, 60, "m");
        const half = (lo: boolean) => Object.fromEntries(Object.entries(all).filter((_, i) => (i < 5) === lo));
        await up([batch("m1", all)]);
        emu.resetCounters();
        // m1 keeps half and gives the other half to a new m2 (resplit); it must not delete what m2 takes.
        const resplit = await up([batch("m1", half(true)), batch("m2", half(false))]);
        assert.deepEqual(resplit.errors, []);
        assert.equal(emu.counters.uploads, 0);
        assert.equal(emu.counters.deletes, 0);
        for (const id of Object.keys(half(false))) assert.equal(emu.images.get(id)!.meta[OWNER_KEY], ownerOf("m2"));
        emu.resetCounters();
        // m1 and m2 renamed into m3: the old batches' deletes run after m3 adopted everything.
        const renamed = await up([batch("m3", all)], [urnOf("m1"), urnOf("m2")]);
        assert.deepEqual(renamed.errors, []);
        assert.equal(renamed.counts.delete, 2);
        assert.equal(emu.counters.uploads, 0);
        assert.equal(emu.counters.deletes, 0);
        assert.equal(emu.images.size > 10 && Object.keys(all).every((id) => emu.images.has(id)), true);
    });

    it("destroy deletes the batch's images, except one another resource has taken over", async () => {
        emu.images.get("m/50.png")!.meta[OWNER_KEY] = "host-test/someone-else";
        emu.resetCounters();
        const result = await driver.destroy();
        assert.deepEqual(result.errors, []);
        assert.ok(emu.images.has("m/50.png"));
        assert.ok(!emu.images.has("m/51.png") && !emu.images.has("b/1.png") && !emu.images.has("p/33.png"));
    });

    it("a running batch prints a progress line (count, rate, ETA) on stderr every interval", async () => {
        const slow = await EngineDriver.start({ "sourcing-kit:rateLimit": JSON.stringify({ requests: 100_000, windowSeconds: 300 }) },
            { env: { SOURCING_KIT_PROGRESS_SECONDS: "0.2" } });
        try {
            for (const n of [70, 71]) origin.register(`/slow/${n}.png`, { body: pngBytes(n), contentType: "image/png", delayMs: 700 });
            const images = Object.fromEntries([70, 71].map((n) => [`s/${n}.png`, { url: origin.url(`/slow/${n}.png`), sourceHash: `png-${n}` }]));
            const result = await slow.up([batch("slow", images)]);
            assert.deepEqual(result.errors, []);
            assert.match(slow.host.output(), /CloudflareImageBatch host-test\/slow: writing 0\/2 images, 0\.0 images\/s, ETA unknown/);
            await slow.destroy();
        } finally {
            await slow.host.kill();
        }
    });

    it("no token in stored outputs (only as a secret), error messages or host output", () => {
        for (const text of seen) assert.ok(!text.includes(TOKEN), "token in plain text");
    });

    it("state per image stays small: outputs + inputs of 1,000 images as the file backend writes them", async () => {
        const { checkBatchInputs, storedImage } = await import("../../provider/image-batch-plan");
        const inputs: Record<string, Props> = {};
        const outputs: Record<string, Props> = {};
        for (let i = 0; i < 1000; i++) {
            const id = `catalog/products/shoe-${String(i).padStart(6, "0")}.jpg`;
            inputs[id] = { url: `https://cdn.example.com/media/products/shoe-${String(i).padStart(6, "0")}.jpg`, sourceHash: `"${"9f".repeat(16)}"` };
            outputs[id] = storedImage(inputs[id] as never, i % 10 === 0) as unknown as Props;
        }
        assert.deepEqual(checkBatchInputs({ accountId: "acc", owner: "s/b", images: inputs }), []);
        const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v, null, 4)) + 16 * 1000; // + the nesting of a state file
        const perImage = (bytes({ images: inputs }) + bytes({ images: outputs })) / 1000;
        console.log(`      state per image (inputs + outputs, indented): ${perImage.toFixed(0)} bytes`);
        assert.ok(perImage < 600, `${perImage} bytes per image`);
    });
});
