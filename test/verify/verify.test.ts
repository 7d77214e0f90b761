// verify: the pure verdicts, the stack-export reader, and runVerify against a local Cloudflare (emulator, real D1,
// the redirect Worker in workerd) with each kind of damage injected the way it happens to users.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startLocalCloudflare, type LocalCloudflare } from "../../local/cloudflare";
import { D1Client } from "../../provider/d1-client";
import { ImagesClient } from "../../provider/images-client";
import { deliveryUrlFor } from "../../provider/image-outputs";
import { upsertStatements } from "../../provider/redirect/rows";
import { packMetadata } from "../../provider/source-metadata";
import { checkAnswer, checkImage, countLine, csv } from "../../verify/checks";
import { duration, progressLine } from "../../verify/progress";
import { runVerify, type VerifyResult } from "../../verify/run";
import { IMAGE_TYPE, readStackExport, ROWS_TYPE, type StackState, type StateImage } from "../../verify/stack-state";

const ACCOUNT = "acc-verify";
const TOKEN = "verify-token";
const HASH = "hash-verify";

describe("verify: pure parts", () => {
    it("reads images, redirect shards, outputs and pending operations out of a stack export", () => {
        const state = readStackExport({
            version: 3,
            deployment: {
                resources: [
                    { urn: "urn:s", type: "pulumi:pulumi:Stack", outputs: { redirectHostname: "old.example.com" } },
                    { urn: "urn:i", type: IMAGE_TYPE, outputs: { imageId: "a.png", accountId: "acc", sourceHash: "h1", filePath: "/x/a.png", apiToken: { ciphertext: "x" } } },
                    { urn: "urn:r", type: ROWS_TYPE, outputs: { shard: "redirects-rows-all", accountId: "acc", databaseId: "db", rows: { "/a.png": "https://imagedelivery.net/h/a.png/public" } } },
                    { urn: "urn:o", type: "sourcing-kit:index:MigratedImageSet" },
                ],
                pending_operations: [{ type: "creating" }],
            },
        });
        assert.deepEqual(state.images, [{ imageId: "a.png", accountId: "acc", sourceHash: "h1", filePath: "/x/a.png" }], "no secret is read");
        assert.equal(state.shards[0]!.rows["/a.png"], "https://imagedelivery.net/h/a.png/public");
        assert.equal(state.outputs.redirectHostname, "old.example.com");
        assert.equal(state.pending, 1);
        assert.throws(() => readStackExport({ version: 3, deployment: { resources: [{ urn: "urn:bad", type: IMAGE_TYPE, outputs: { imageId: "a" } }] } }),
            /urn:bad: its state lacks accountId, sourceHash; run pulumi refresh/);
        assert.throws(() => readStackExport({ hello: 1 }), /not a Pulumi stack export/);
    });

    it("judges images, answers and counts, and writes CSV that quotes what needs it", () => {
        assert.equal(checkImage("h1", { meta: packMetadata({ a: "b" }, "h1") }).status, "ok");
        assert.match(checkImage("h1", { meta: packMetadata({}, "h2") }).detail!, /records source hash h2, the stack h1/);
        assert.equal(checkImage("h1", undefined).status, "missing");
        assert.equal(checkAnswer("https://x/y", 301, "https://x/y").status, "ok");
        assert.match(checkAnswer("https://x/y", 302, "https://x/y").detail!, /answered 302, not 301/);
        assert.equal(checkAnswer("https://x/y", 301, "https://x/z").status, "wrong-redirect");
        assert.equal(countLine([{ status: "ok" }, { status: "missing" }, { status: "ok" }]), "2 ok, 1 missing");
        assert.equal(csv([{ oldUrl: "/a,b.png", imageId: "a", deliveryUrl: "u", status: "missing", detail: 'say "hi"' }]),
            'old_url,custom_id,delivery_url,status,detail\n"/a,b.png",a,u,missing,"say ""hi"""\n');
        assert.equal(progressLine("verify: images", 1200, 10_000, 30_000), "verify: images 1,200/10,000 (40/s, 3m40s left)");
        assert.equal(duration(4000), "1h06m");
    });
});

describe("verify against a local Cloudflare", function () {
    let cf: LocalCloudflare;
    let dir: string;
    let images: ImagesClient;
    let state: StackState;
    const limiterKey = `verify-test-${process.pid}`;

    /** Three images from files, two old paths each mapped in one shard: what a stack's state holds after `up`. */
    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "sk-verify-"));
        cf = await startLocalCloudflare({ accountId: ACCOUNT, accountHash: HASH, tokens: [TOKEN], originDir: dir });
        images = new ImagesClient({ apiToken: TOKEN, accountId: ACCOUNT, apiBaseUrl: cf.apiBaseUrl, limiterKey });
        const stateImages: StateImage[] = [];
        const rows: Record<string, string> = {};
        for (const name of ["a.png", "b.png", "c.png"]) {
            const file = path.join(dir, name);
            fs.copyFileSync(path.join(__dirname, "..", "..", "examples", "images", name === "a.png" ? "logo.png" : `products/${name === "b.png" ? "red" : "blue"}-shoe.png`), file);
            const imageId = `v/${name}`;
            const sourceHash = `sha-${name}`;
            await images.upload({ id: imageId, filePath: file, metadata: packMetadata({}, sourceHash) });
            const deliveryUrl = deliveryUrlFor(HASH, imageId, "public", cf.deliveryBaseUrl);
            stateImages.push({ imageId, accountId: ACCOUNT, apiBaseUrl: cf.apiBaseUrl, sourceHash, filePath: file, deliveryUrl });
            rows[`/old/${name}`] = deliveryUrl;
        }
        const shard = { shard: "redirects-rows-all", accountId: ACCOUNT, databaseId: cf.databaseId, apiBaseUrl: cf.apiBaseUrl, rows };
        await d1().query(upsertStatements(shard.shard, rows));
        state = { images: stateImages, shards: [shard], outputs: {}, pending: 0 };
    });
    after(async () => {
        await cf?.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    const d1 = () => new D1Client({ apiToken: TOKEN, accountId: ACCOUNT, databaseId: cf.databaseId, apiBaseUrl: cf.apiBaseUrl, limiterKey });
    const verify = (extra: { bytes?: boolean; workerUrl?: string | null } = {}): Promise<VerifyResult> => runVerify({
        state, apiToken: TOKEN, bytes: extra.bytes ?? false, projectDir: dir, progress: () => undefined,
        workerUrl: extra.workerUrl === null ? undefined : extra.workerUrl ?? cf.workerUrl,
    });

    it("finds everything in place: every image with its hash, every row in D1 answered 301, every original the source's bytes", async () => {
        const result = await verify({ bytes: true });
        assert.deepEqual(result.problems, []);
        assert.equal(countLine(result.images), "3 ok");
        assert.equal(countLine(result.rows), "3 ok");
        assert.deepEqual(result.lines.map((l) => [l.oldUrl, l.imageId, l.status]), [
            ["/old/a.png", "v/a.png", "ok"], ["/old/b.png", "v/b.png", "ok"], ["/old/c.png", "v/c.png", "ok"],
        ]);
    });

    it("without a Worker URL checks D1 only, and says so", async () => {
        const result = await verify({ workerUrl: null });
        assert.deepEqual(result.problems, []);
        assert.match(result.notes.join("\n"), /Worker's answers were not checked .* pass --worker-url/);
    });

    it("names a deleted image, a replaced image, a broken redirect and a changed source, each once", async () => {
        await images.delete("v/a.png");
        await images.update("v/b.png", { metadata: packMetadata({}, "sha-someone-else") });
        await d1().query([{ sql: "UPDATE redirects SET location = ? WHERE path = ?", params: ["https://elsewhere.example/x.png", "/old/c.png"] }]);
        fs.writeFileSync(state.images[2]!.filePath!, Buffer.concat([fs.readFileSync(state.images[2]!.filePath!), Buffer.from([0])]));
        const result = await verify({ bytes: true });
        assert.deepEqual(result.problems.map((p) => p.split(":").slice(0, 2).join(":")), [
            "redirect /old/c.png: wrong-row",
            "image v/a.png: missing",
            "image v/b.png: wrong-hash",
            "image v/c.png: bytes-differ",
        ]);
        assert.match(result.problems[0]!, /the table sends it to https:\/\/elsewhere\.example\/x\.png/);
        assert.deepEqual(result.lines.map((l) => l.status), ["missing", "wrong-hash", "wrong-row"]);
    });

    it("names a row the table lost and an old path the Worker no longer redirects", async () => {
        await d1().query([{ sql: "DELETE FROM redirects WHERE path = ?", params: ["/old/a.png"] }]);
        // The stack's shard claims a row the table holds for another shard: D1 is right, the Worker answers it.
        const result = await verify({ workerUrl: cf.originUrl });
        const byKey = new Map(result.lines.map((l) => [l.oldUrl, l]));
        assert.equal(byKey.get("/old/a.png")!.status, "not-in-d1");
        assert.match(result.problems.find((p) => p.startsWith("redirect /old/b.png"))!, /not-redirected: the Worker answered (404|200), not 301/);
    });
});
