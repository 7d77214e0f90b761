// `pulumi preview` as a pre-flight, under the real CLI: a conflict fails it with the exit code and the program's
// message, nothing written; once fixed, the warnings (overwrite, near the allowance, dead source URLs) show and
// the preview passes; `up` exports the counts as the `preflight` stack output.
import { strict as assert } from "assert";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { call, uploadForm } from "../emulator/http-helpers";
import { describeEngine } from "./cli";
import { EngineProject, imageOps } from "./project";

const TOKEN = "engine-preflight-token";
const STACK = "preflight";
const writes = (emu: Emulator) => emu.counters.uploads + emu.counters.patches + emu.counters.deletes;

describeEngine("real engine: pulumi preview as a pre-flight", function () {
    this.timeout(300_000);
    let emu: Emulator;
    let origin: ImageOrigin;
    let project: EngineProject;
    let config: Record<string, unknown>;

    before(async () => {
        emu = await startEmulator({ tokens: [TOKEN], rateLimit: { requests: 100_000, windowSeconds: 300 } });
        origin = await startImageOrigin();
        project = await EngineProject.create({ env: { CLOUDFLARE_API_TOKEN: TOKEN } });
        // p1..p3 uploaded earlier by sourcing-kit with today's hashes, p4 and p5 someone else's, p6..p10 new.
        const rows = Array.from({ length: 10 }, (_, i) => ({ id: `p${i + 1}.png`, hash: `h${i + 1}` }));
        for (const [i, r] of rows.entries()) origin.register(`/media/${r.id}`, { body: pngBytes(i + 1), contentType: "image/png" });
        await project.writeFile("catalog.ndjson", rows.map((r) => JSON.stringify({ url: origin.url(`/media/${r.id}`), id: r.id, hash: r.hash })).join("\n") + "\n");
        for (const [i, r] of rows.slice(0, 5).entries()) {
            const meta = i < 3 ? { _skh: r.hash } : { owner: "another team" };
            const a = await call(emu.baseUrl, "POST", `/accounts/${emu.accountId}/images/v1`, {
                token: TOKEN, form: uploadForm({ id: `cat/${r.id}`, metadata: JSON.stringify(meta) }, { bytes: pngBytes(i + 1) }),
            });
            assert.equal(a.status, 200);
        }
        // 20 old URLs, of which the 5th is gone and the 15th is now an HTML page.
        origin.register("/old/gone.png", { body: Buffer.from("gone"), status: 404, contentType: "text/plain" });
        origin.register("/old/page.png", { body: Buffer.from("<html></html>"), contentType: "text/html" });
        const urls = Array.from({ length: 20 }, (_, i) => origin.url(`/img/${200 + i}.png`));
        urls[4] = origin.url("/old/gone.png");
        urls[14] = origin.url("/old/page.png");
        config = {
            "sourcing-kit:apiBaseUrl": emu.baseUrl,
            "sourcing-kit:accountId": emu.accountId,
            "sourcing-kit:accountHash": emu.accountHash,
            "sourcing-kit:scopedToken": false,
            "sourcing-kit:sources": [
                { kind: "manifest", name: "catalog", path: "catalog.ndjson", idPrefix: "cat" },
                { kind: "urls", name: "old-site", urls, idPrefix: "old" },
            ],
        };
        await project.initStack(STACK, config);
    });
    after(async () => {
        await project?.close();
        await origin?.close();
        await emu?.close();
    });

    it("fails preview (non-zero exit) on images other than ours under planned custom IDs, naming the fix; nothing written", async () => {
        emu.resetCounters();
        const { result, json } = await project.preview(STACK, [], { allowFailure: true });
        assert.notEqual(result.code, 0);
        const errors = (json.diagnostics ?? []).filter((d) => d.severity === "error").map((d) => d.message);
        assert.equal(errors.length, 1, "said once, not once per image set");
        const output = errors.join("\n") + result.stderr;
        assert.match(output, /pre-flight found 1 problem; nothing was sent to Cloudflare Images/);
        assert.match(output, /sourcing-kit:sources\[0\]: 2 planned custom IDs already hold images that sourcing-kit did not upload \(e\.g\. "cat\/p4\.png", "cat\/p5\.png"\)/);
        assert.match(output, /set sourcing-kit:sources\[0\]\.onConflict to overwrite/);
        assert.ok(!output.includes(TOKEN));
        assert.ok(!/at \S+ \(.*\.ts:\d+:\d+\)/.test(output), `no stack trace:\n${output}`);
        assert.deepEqual(imageOps(json.steps), {}, "no image declared");
        assert.equal(writes(emu), 0);
    });

    it("with onConflict overwrite and the account near its allowance, preview passes with each finding as a warning", async () => {
        const sources = config["sourcing-kit:sources"] as Record<string, unknown>[];
        config["sourcing-kit:sources"] = [{ ...sources[0], onConflict: "overwrite" }, sources[1]];
        await project.writeStackConfig(STACK, config);
        emu.setAllowedImages(30); // 5 stored + 5 + 20 new = 30
        emu.resetCounters();
        const { result, json } = await project.preview(STACK);
        assert.equal(result.code, 0);
        const messages = (json.diagnostics ?? []).map((d) => `${d.severity}: ${d.message.trim()}`);
        const has = (text: string) => assert.ok(messages.some((m) => m.includes(text)), `${text}\n${messages.join("\n")}`);
        has("info: catalog: pre-flight: 5 to upload, 3 already in Cloudflare with this source hash (no upload), 0 uploaded earlier from other source bytes (replaced), 2 taken by other images");
        has("warning: sourcing-kit:sources[0]: 2 planned custom IDs already hold images that sourcing-kit did not upload");
        has("warning: the plan adds 25 images and the account holds 5 of 30 allowed images: afterwards 30 (100% of the allowance)");
        has(`warning: sourcing-kit:sources[1]: 2 of 20 sampled source URLs would fail to import: ${origin.url("/old/gone.png")} (HTTP 404); ${origin.url("/old/page.png")} (not an image (text/html))`);
        has("info: pre-flight: adds 25 images: about $0.00 a month to store");
        assert.deepEqual(imageOps(json.steps), { create: 30 });
        assert.equal(writes(emu), 0);
    });

    it("up migrates as the pre-flight said and exports its counts as the preflight stack output", async () => {
        // The two dead URLs fixed at the source first.
        origin.register("/old/gone.png", { body: pngBytes(901), contentType: "image/png" });
        origin.register("/old/page.png", { body: pngBytes(902), contentType: "image/png" });
        emu.resetCounters();
        const up = await project.update("up", STACK);
        assert.deepEqual(imageOps(up.done), { create: 30 });
        assert.equal(emu.counters.uploads, 5 + 2 + 20, "the new, the two overwritten and the old site's; the 3 of ours adopted");
        const output = JSON.parse((await project.pulumi(["stack", "output", "preflight", "--json", "-s", STACK])).stdout) as {
            mode: string; account: { imagesStored: number; allowed: number; adds: number }; sets: Record<string, Record<string, number | string>>;
        };
        assert.equal(output.mode, "sample");
        assert.deepEqual({ stored: output.account.imagesStored, allowed: output.account.allowed, adds: output.account.adds }, { stored: 5, allowed: 30, adds: 25 });
        assert.deepEqual(output.sets.catalog, { planned: 10, alreadyThere: 3, replaced: 0, conflicts: 2, toUpload: 5, onConflict: "overwrite", sourcesChecked: 10, sourcesFailed: 0 });
        assert.equal(output.sets["old-site"]?.sourcesChecked, 20);
        await project.update("destroy", STACK);
        assert.equal(emu.images.size, 0);
    });
});
