// The pre-flight's read-only calls against the emulator and a loopback image origin: token, allowance, what the
// account already holds, sample source URLs. Every case asserts that nothing was written.
import { strict as assert } from "assert";
import { runPreflight, type PreflightOptions } from "../../components/preflight";
import type { SetPlan } from "../../components/preflight/assess";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { call, uploadForm } from "../emulator/http-helpers";

const TOKEN = "preflight-token";
const writes = (emu: Emulator) => emu.counters.uploads + emu.counters.patches + emu.counters.deletes;

describe("pre-flight against the emulator", function () {
    this.timeout(60_000);
    let emu: Emulator;
    let origin: ImageOrigin;

    before(async () => {
        emu = await startEmulator({
            tokens: [TOKEN, "images-none", "no-token-api", "account-owned", "disabled"],
            tokenGrants: {
                "images-none": { images: "none" },
                "no-token-api": { apiTokens: false },
                "account-owned": { owner: "account" },
                disabled: { status: "disabled" },
            },
            rateLimit: { requests: 100_000, windowSeconds: 300 },
        });
        origin = await startImageOrigin();
        // 3 uploaded earlier by sourcing-kit with the planned hashes, 2 foreign images under planned IDs, 1 of ours
        // from other source bytes, and 4 unrelated images.
        const seed = async (id: string, meta?: Record<string, unknown>) => {
            const a = await call(emu.baseUrl, "POST", `/accounts/${emu.accountId}/images/v1`, {
                token: TOKEN, form: uploadForm({ id, ...(meta ? { metadata: JSON.stringify(meta) } : {}) }, { bytes: pngBytes(id.length) }),
            });
            assert.equal(a.status, 200, JSON.stringify(a.body));
        };
        for (const i of [1, 2, 3]) await seed(`cat/p${i}.png`, { _skh: `h${i}`, alt: "x" });
        for (const i of [4, 5]) await seed(`cat/p${i}.png`, { owner: "someone else" });
        await seed("cat/p6.png", { _skh: "h6-old" });
        for (const i of [1, 2, 3, 4]) await seed(`unrelated/${i}.png`);
    });
    after(async () => {
        await origin?.close();
        await emu?.close();
    });
    beforeEach(() => {
        emu.resetCounters();
        emu.setAllowedImages(100_000);
    });
    afterEach(() => assert.equal(writes(emu), 0, "the pre-flight wrote nothing"));

    const options = (extra: Partial<PreflightOptions> = {}): PreflightOptions => ({
        mode: "sample", token: TOKEN, tokenSource: "cloudflare:apiToken", accountId: emu.accountId, apiBaseUrl: emu.baseUrl,
        useBatchApi: false, scopedToken: false, rateLimit: { requests: 1000, windowSeconds: 60 }, sourceChecks: 0, ...extra,
    });
    /** p1..p11: 3 already there, 2 taken by others, 1 ours from other bytes, 5 new. */
    const catalog = (onConflict: SetPlan["onConflict"] = "adopt"): SetPlan => ({
        name: "catalog", configPath: "sourcing-kit:sources[0]", onConflict,
        images: Array.from({ length: 11 }, (_, i) => ({ imageId: `cat/p${i + 1}.png`, sourceHash: `h${i + 1}`, url: origin.url(`/img/${i + 1}.png`) })),
    });

    it("counts 3 already there, 2 conflicting, 1 replaced and 5 new, and fails for conflicts under onConflict adopt", async () => {
        const result = await runPreflight(options(), [catalog("adopt")]);
        assert.deepEqual(result.report.sets.catalog, {
            planned: 11, alreadyThere: 3, replaced: 1, conflicts: 2, toUpload: 5, onConflict: "adopt", sourcesChecked: 0, sourcesFailed: 0,
        });
        assert.equal(result.problems.length, 1, result.problems.join("\n"));
        assert.match(result.problems[0]!, /^sourcing-kit:sources\[0\]: 2 planned custom IDs already hold images that sourcing-kit did not upload \(e\.g\. "cat\/p4\.png", "cat\/p5\.png"\); with onConflict adopt \(the default\) up refuses each/);
        assert.match(result.problems[0]!, /set sourcing-kit:sources\[0\]\.onConflict to overwrite/);
        assert.equal(result.report.account?.adds, 5);
        assert.equal(result.report.account?.imagesStored, 10);
        assert.ok(result.info.some((l) => l.message === "catalog: pre-flight: 5 to upload, 3 already in Cloudflare with this source hash (no upload), 1 uploaded earlier from other source bytes (replaced), 2 taken by other images"));
    });

    it("fails for conflicts under onConflict fail, and only warns under overwrite", async () => {
        assert.match((await runPreflight(options(), [catalog("fail")])).problems.join(), /with onConflict fail up stops at each of them/);
        const overwrite = await runPreflight(options(), [catalog("overwrite")]);
        assert.deepEqual(overwrite.problems, []);
        assert.deepEqual(overwrite.warnings.map((w) => w.message), [
            'sourcing-kit:sources[0]: 2 planned custom IDs already hold images that sourcing-kit did not upload (e.g. "cat/p4.png", "cat/p5.png"); onConflict is overwrite, so up deletes them and uploads ours',
        ]);
    });

    it("fails a plan over the allowance with the numbers, and warns near it", async () => {
        emu.setAllowedImages(14); // 10 stored + 5 new
        const over = await runPreflight(options(), [catalog("overwrite")]);
        assert.equal(over.problems.length, 1);
        assert.match(over.problems[0]!, /^the plan adds 5 images and the account holds 10 of 14 allowed images: 1 over the allowance\. Raise the allowance/);
        emu.setAllowedImages(16);
        const near = await runPreflight(options(), [catalog("overwrite")]);
        assert.deepEqual(near.problems, []);
        assert.ok(near.warnings.some((w) => w.message === "the plan adds 5 images and the account holds 10 of 16 allowed images: afterwards 15 (94% of the allowance); Cloudflare refuses uploads beyond it"),
            JSON.stringify(near.warnings));
        assert.equal(near.report.account?.storedAfter, 15);
    });

    it("prices the plan from the one price table", async () => {
        const result = await runPreflight(options(), [catalog("overwrite")]);
        assert.ok(result.info.some((l) => l.message.startsWith("pre-flight: adds 5 images: about $0.00 a month to store at current prices ($5.00 per 100,000 images stored")));
        assert.equal(result.report.account?.pricesAsOf, "2026-12-03");
    });

    it("lists only the newest images in sample mode past the bound, and gives the adds as a range", async () => {
        const result = await runPreflight(options({ sampleListLimit: 4 }), [catalog("overwrite")]);
        const account = result.report.account!;
        assert.equal(account.listingComplete, false);
        assert.equal(account.listed, 4);
        // 4 of 10 listed (the unrelated ones were uploaded last): 11 planned IDs not seen, 6 images unseen.
        assert.equal(account.adds, 11 - 6);
        assert.equal(account.addsAtMost, 11);
        assert.ok(result.info.some((l) => /listed the 4 most recently uploaded of 10 images/.test(l.message)));
        const full = await runPreflight(options({ mode: "full", sampleListLimit: 4 }), [catalog("overwrite")]);
        assert.equal(full.report.account?.listingComplete, true);
        assert.equal(full.report.account?.adds, 5);
    });

    it("names cloudflare:apiToken for a token Cloudflare does not accept, a disabled one, and one without Images access", async () => {
        const unknown = await runPreflight(options({ token: "nobody" }), [catalog()]);
        assert.deepEqual(unknown.problems.length, 1);
        assert.match(unknown.problems[0]!, /^cloudflare:apiToken: Cloudflare does not accept this token \(HTTP 401, code 1000: Invalid API Token\): set a valid one with pulumi config set --secret cloudflare:apiToken/);
        assert.ok(!unknown.problems[0]!.includes("nobody"), "the token is never printed");
        assert.match((await runPreflight(options({ token: "disabled" }), [catalog()])).problems.join(), /^cloudflare:apiToken: the token is disabled/);
        const noImages = await runPreflight(options({ token: "images-none", tokenSource: "CLOUDFLARE_API_TOKEN" }), [catalog()]);
        assert.deepEqual(noImages.problems, [
            `CLOUDFLARE_API_TOKEN: the token cannot use Cloudflare Images on account ${emu.accountId} (HTTP 403, code 9109: Unauthorized to access requested resource): give it Account > Cloudflare Images > Edit (Images Write), or check sourcing-kit:accountId`,
        ]);
        assert.equal(noImages.report.account, undefined);
    });

    it("verifies an account-owned token at the account path", async () => {
        const result = await runPreflight(options({ token: "account-owned" }), [catalog("overwrite")]);
        assert.deepEqual(result.problems, []);
        assert.equal(emu.counters.byRoute["GET tokens/verify 200"], 1);
    });

    it("with a scoped token: the bootstrap token must manage API tokens, and need not read Images", async () => {
        const noTokens = await runPreflight(options({ token: "no-token-api", scopedToken: true }), [catalog("overwrite")]);
        assert.equal(noTokens.problems.length, 1);
        assert.match(noTokens.problems[0]!, /^cloudflare:apiToken: with sourcing-kit:scopedToken true \(the default\) this token creates the migration's API token, but it may not manage API tokens .*give it User > API Tokens > Edit, or set sourcing-kit:scopedToken false/);
        const noImages = await runPreflight(options({ token: "images-none", scopedToken: true }), [catalog("overwrite")]);
        // images-none may manage tokens (the default grant) but not read Images: checked as far as it can see.
        assert.deepEqual(noImages.problems, []);
        assert.match(noImages.warnings.map((w) => w.message).join(), /cannot read Cloudflare Images .* so the allowance and existing images were not checked/);
    });

    it("names sourcing-kit:preflight off when the API cannot be reached, in seconds", async () => {
        const result = await runPreflight(options({ apiBaseUrl: "http://127.0.0.1:9/client/v4" }), [catalog()]);
        assert.equal(result.problems.length, 1);
        assert.match(result.problems[0]!, /^sourcing-kit:preflight: cannot reach http:\/\/127\.0\.0\.1:9\/client\/v4 \(.*ECONNREFUSED\).*set sourcing-kit:preflight off to preview without the pre-flight checks/);
    });

    it("reports exactly the 2 dead URLs of 20 sampled, without the credentials in them", async () => {
        origin.register("/media/gone.jpg", { body: Buffer.from("no"), status: 404, contentType: "text/plain" });
        origin.register("/media/page.jpg", { body: Buffer.from("<html>moved</html>"), contentType: "text/html" });
        const urls = Array.from({ length: 20 }, (_, i) => origin.url(`/img/${100 + i}.png`));
        urls[4] = origin.url("/media/gone.jpg").replace("http://", "http://user:hunter2@");
        urls[13] = `${origin.url("/media/page.jpg")}?sig=abcdef&w=10`;
        const set: SetPlan = { name: "urls", configPath: "sourcing-kit:sources[1]", onConflict: "adopt", images: urls.map((url, i) => ({ imageId: `u/${i}.png`, sourceHash: `u${i}`, url })) };
        const before = origin.requests;
        const result = await runPreflight(options({ sourceChecks: 20 }), [set]);
        assert.equal(origin.requests - before, 20);
        assert.deepEqual(result.problems, []);
        assert.deepEqual(result.report.sets.urls?.sourcesChecked, 20);
        assert.deepEqual(result.report.sets.urls?.sourcesFailed, 2);
        const warning = result.warnings.map((w) => w.message).join("\n");
        assert.equal(warning, `sourcing-kit:sources[1]: 2 of 20 sampled source URLs would fail to import: ${origin.url("/media/gone.jpg")} (HTTP 404); ` +
            `${origin.url("/media/page.jpg")}?sig=redacted&w=10 (not an image (text/html))`);
        assert.ok(!warning.includes("hunter2") && !warning.includes("abcdef"));
    });

    it("samples a bounded, stable spread of a large set's URLs", async () => {
        const urls = Array.from({ length: 500 }, (_, i) => origin.url(`/img/${i}.png`));
        const set: SetPlan = { name: "big", configPath: "sourcing-kit:sources[2]", onConflict: "adopt", images: urls.map((url, i) => ({ imageId: `b/${i}`, sourceHash: `b${i}`, url })) };
        const seen: string[] = [];
        await runPreflight(options({ sourceChecks: 5, probe: async (url) => { seen.push(url); return { status: 200, head: pngBytes(1) }; } }), [set]);
        assert.deepEqual(seen.sort(), [0, 100, 200, 300, 400].map((i) => origin.url(`/img/${i}.png`)).sort());
    });
});
