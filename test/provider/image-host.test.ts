import { strict as assert } from "assert";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { DesiredResource, EngineDriver, isSecret, ResourceState, secret, unwrapSecrets } from "../host/engine-driver";
import { Props, startProviderHost } from "../host/provider-host";
import { CapturedRegistration, captureImageRegistration } from "../host/serialized-provider";
import { deliveryUrlFor } from "../../provider/image";
import { SOURCE_HASH_KEY } from "../../provider/source-metadata";
import { badImageInputs } from "./bad-inputs";

const TOKEN_A = "tok-a-5f2c9e71d4";
const TOKEN_B = "tok-b-8e03ab66c1";
const TOKEN_CONFIG = "tok-config-31d7f0a9bb";
const TOKENS = [TOKEN_A, TOKEN_B, TOKEN_CONFIG];
const N = 20;
const TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";

const urnOf = (name: string) => `urn:pulumi:host-test::sourcing-kit::${TYPE}::${name}`;

/** Total requests the emulator answered with an auth failure (any route). */
function authFailures(emu: Emulator): number {
    return Object.entries(emu.counters.byRoute)
        .filter(([k]) => / 40[13]$/.test(k))
        .reduce((n, [, v]) => n + v, 0);
}

function writes(emu: Emulator): number {
    return Object.entries(emu.counters.byRoute)
        .filter(([k]) => /^(batch )?(POST|PATCH|DELETE) /.test(k))
        .reduce((n, [, v]) => n + v, 0);
}

describe("CloudflareImage in the real dynamic provider host", function () {
    let reg: CapturedRegistration;
    let emu: Emulator;
    let origin: ImageOrigin;
    let driver: EngineDriver;
    let providerText: string;
    /** Everything a user or a state file could see: checkpoints, host output, error messages. */
    const seen: string[] = [];
    const hostOutputs: Array<() => string> = [];
    const rawCheckpoints: string[] = [];

    const image = (i: number, over: Props = {}): DesiredResource => ({
        urn: urnOf(`img-${i}`),
        additionalSecretOutputs: reg.additionalSecretOutputs,
        inputs: {
            __provider: providerText,
            accountId: "acc-test",
            imageId: `s1/img-${i}.png`,
            url: origin.url(`/img/${i}.png`),
            sourceHash: `png-${i}`,
            apiBaseUrl: emu.baseUrl,
            apiToken: secret(TOKEN_A),
            ...over,
        },
    });
    let desired: DesiredResource[] = [];

    async function up(resources: DesiredResource[], d = driver) {
        const result = await d.up(resources);
        seen.push(d.plainTextCheckpoint(), ...result.errors.map((e) => e.message));
        rawCheckpoints.push(d.checkpoint());
        return result;
    }

    before(async () => {
        reg = await captureImageRegistration();
        providerText = String(reg.inputs.__provider);
        emu = await startEmulator({ tokens: TOKENS });
        origin = await startImageOrigin();
        driver = await EngineDriver.start({ "cloudflare:apiToken": secret(TOKEN_CONFIG) });
        hostOutputs.push(driver.host.output);
    });

    after(async () => {
        await driver?.host.kill();
        await emu?.close();
        await origin?.close();
    });

    it("the program registers the serialized shim and marks apiToken secret (input and additionalSecretOutputs)", () => {
        assert.equal(reg.type, TYPE);
        assert.ok(isSecret(reg.inputs.apiToken), "apiToken input must reach the engine as a secret");
        assert.deepEqual(reg.additionalSecretOutputs, ["apiToken"]);
        assert.match(providerText, /image-provider/);
    });

    it(`check: ${badImageInputs({}).length} bad inputs each fail on the named property, with no request sent`, async () => {
        emu.resetCounters();
        const good = unwrapSecrets(image(0).inputs) as Props;
        for (const [name, inputs, property, reason] of badImageInputs(good)) {
            const res = await driver.host.check(urnOf("bad"), {}, inputs);
            const hit = res.failures.find((f) => f.property === property);
            assert.ok(hit, `${name}: no failure on ${property}: ${JSON.stringify(res.failures)}`);
            assert.match(hit!.reason, reason, name);
            seen.push(...res.failures.map((f) => f.reason));
        }
        assert.equal(emu.counters.requests, 0);
    });

    it("1. up creates N images; a second up finds no change and sends no request", async () => {
        desired = Array.from({ length: N }, (_, i) => image(i));
        emu.resetCounters();
        const first = await up(desired);
        assert.deepEqual(first.errors, []);
        assert.equal(first.counts.create, N);
        assert.equal(emu.counters.uploads, N);
        for (let i = 0; i < N; i++) {
            const out = unwrapSecrets(driver.state.get(urnOf(`img-${i}`))!.outputs) as Props;
            assert.equal(out.deliveryUrl, deliveryUrlFor("hash-test", `s1/img-${i}.png`));
            assert.equal(out.adopted, false);
            assert.equal(out.sourceHash, `png-${i}`);
            assert.equal(emu.images.get(`s1/img-${i}.png`)!.meta[SOURCE_HASH_KEY], `png-${i}`);
        }

        emu.resetCounters();
        const second = await up(desired);
        assert.deepEqual(second.errors, []);
        assert.equal(second.counts.same, N);
        assert.equal(emu.counters.requests, 0);
    });

    it("keeps the serialized __provider within 4 KiB and one image's stored inputs + outputs within 8 KiB", () => {
        const providerBytes = Buffer.byteLength(providerText);
        const r = driver.state.get(urnOf("img-0"))!;
        const stateBytes = Buffer.byteLength(JSON.stringify({ inputs: r.inputs, outputs: r.outputs }));
        const withoutShim = Buffer.byteLength(JSON.stringify({ inputs: { ...r.inputs, __provider: "" }, outputs: { ...r.outputs, __provider: "" } }));
        console.log(`      __provider: ${providerBytes} bytes; one image's inputs + outputs: ${stateBytes} bytes ` +
            `(${withoutShim} without the two __provider copies)`);
        assert.ok(providerBytes <= 4096, `__provider is ${providerBytes} bytes`);
        assert.ok(stateBytes <= 8192, `inputs + outputs are ${stateBytes} bytes`);
    });

    it("2. new source bytes replace the image: delete, then upload again under the same custom ID", async () => {
        for (const i of [3, 4, 5]) desired[i] = image(i, { url: origin.url(`/img/${100 + i}.png`), sourceHash: `png-${100 + i}` });
        emu.resetCounters();
        const result = await up(desired);
        assert.deepEqual(result.errors, []);
        assert.equal(result.counts.replace, 3);
        assert.equal(result.counts.same, N - 3);
        for (const s of result.steps.filter((s) => s.op === "replace")) {
            assert.deepEqual(s.replaces, ["sourceHash"]);
            assert.equal(s.deleteBeforeReplace, true);
        }
        assert.equal(emu.counters.deletes, 3);
        assert.equal(emu.counters.uploads, 3);
        for (const i of [3, 4, 5]) {
            const stored = emu.images.get(`s1/img-${i}.png`)!;
            assert.deepEqual(stored.bytes, pngBytes(100 + i));
            assert.equal(stored.meta[SOURCE_HASH_KEY], `png-${100 + i}`);
        }
    });

    it("2. a new custom ID creates the new image first, then deletes the old one", async () => {
        desired[10] = image(10, { imageId: "s1/renamed-10.png" });
        emu.resetCounters();
        const result = await up(desired);
        assert.deepEqual(result.errors, []);
        const replace = result.steps.find((s) => s.op === "replace")!;
        assert.deepEqual(replace, { urn: urnOf("img-10"), op: "replace", replaces: ["imageId"], deleteBeforeReplace: false });
        assert.equal(result.counts.delete, 1, "the old image is deleted after the new one exists");
        assert.equal(driver.pendingDeletes.length, 0);
        assert.ok(emu.images.has("s1/renamed-10.png") && !emu.images.has("s1/img-10.png"));
    });

    it("3. new metadata is PATCHed in place, with no re-upload", async () => {
        for (const i of [6, 7, 8]) desired[i] = image(i, { metadata: { alt: `picture ${i}`, rank: i } });
        emu.resetCounters();
        const originBefore = origin.requests;
        const result = await up(desired);
        assert.deepEqual(result.errors, []);
        assert.equal(result.counts.update, 3);
        assert.equal(emu.counters.patches, 3);
        assert.equal(emu.counters.uploads, 0);
        assert.equal(origin.requests, originBefore);
        assert.deepEqual(emu.images.get("s1/img-7.png")!.meta, { alt: "picture 7", rank: 7, [SOURCE_HASH_KEY]: "png-7" });
        emu.resetCounters();
        assert.equal((await up(desired)).counts.same, N);
        assert.equal(emu.counters.requests, 0);
    });

    it("4. a rotated token is an update with no API call; deletes use the new token, then fall back to the configured one", async () => {
        desired = desired.map((d) => ({ ...d, inputs: { ...d.inputs, apiToken: secret(TOKEN_B) } }));
        emu.resetCounters();
        const rotated = await up(desired);
        assert.deepEqual(rotated.errors, []);
        assert.equal(rotated.counts.update, N);
        assert.equal(emu.counters.requests, 0);
        const stored = driver.state.get(urnOf("img-0"))!.outputs.apiToken;
        assert.ok(isSecret(stored) && stored.value === TOKEN_B, "the new token is stored, as a secret");

        emu.revokeToken(TOKEN_A);
        emu.resetCounters();
        desired = desired.filter((d) => d.urn !== urnOf("img-0"));
        const removed = await up(desired);
        assert.deepEqual(removed.errors, []);
        assert.equal(removed.counts.delete, 1);
        assert.equal(authFailures(emu), 0, "the delete used the new token, not the revoked old one");
        assert.ok(!emu.images.has("s1/img-0.png"));

        emu.revokeToken(TOKEN_B);
        emu.resetCounters();
        desired = desired.filter((d) => d.urn !== urnOf("img-1"));
        const fallback = await up(desired);
        assert.deepEqual(fallback.errors, []);
        assert.equal(fallback.counts.delete, 1);
        assert.equal(authFailures(emu), 1, "one rejection of the stored token, then the configured token");
        assert.ok(!emu.images.has("s1/img-1.png"));
        emu.addToken(TOKEN_B);
    });

    it("5. a new build of the provider code (different __provider text) is no change for existing images", async () => {
        providerText = `${providerText}\n// rebuilt\n`;
        desired = desired.map((d) => ({ ...d, inputs: { ...d.inputs, __provider: providerText } }));
        emu.resetCounters();
        const result = await up(desired);
        assert.deepEqual(result.errors, []);
        assert.equal(result.counts.same, desired.length);
        assert.equal(emu.counters.requests, 0);
    });

    it("6. refresh after an out-of-band delete drops the image; the next up uploads it again", async () => {
        emu.images.delete("s1/img-2.png");
        emu.images.get("s1/img-9.png")!.meta = { [SOURCE_HASH_KEY]: "png-9", alt: "edited in the dashboard" };
        const refreshed = await driver.refresh();
        seen.push(driver.plainTextCheckpoint());
        assert.deepEqual(refreshed.errors, []);
        assert.equal(refreshed.counts.drop, 1);
        assert.equal(refreshed.counts.refresh, desired.length - 1);
        assert.ok(!driver.state.has(urnOf("img-2")));
        emu.resetCounters();
        const again = await up(desired);
        assert.deepEqual(again.errors, []);
        assert.equal(again.counts.create, 1);
        assert.equal(again.counts.update, 1, "the metadata edited out of band is put back");
        assert.equal(again.counts.same, desired.length - 2, "refreshed images match the program");
        assert.ok(emu.images.has("s1/img-2.png"));
        assert.deepEqual(emu.images.get("s1/img-9.png")!.meta, { [SOURCE_HASH_KEY]: "png-9" });
        assert.equal(emu.counters.patches, 1);
    });

    {
        const foreign = (hash: string) => {
            emu.images.set("s8/taken.png", {
                id: "s8/taken.png", filename: "taken.png", meta: { [SOURCE_HASH_KEY]: hash, owner: "someone" },
                requireSignedURLs: false, uploaded: new Date(0).toISOString(), bytes: pngBytes(999), contentType: "image/png",
            });
        };
        const taken = (over: Props = {}) => image(80, { imageId: "s8/taken.png", apiToken: secret(TOKEN_B), ...over });

        it("8. a different image under the custom ID: adopt (the default) refuses it, naming the ID, both hashes and the fix", async () => {
            foreign("their-hash");
            const result = await up([...desired, taken()]);
            assert.equal(result.errors.length, 1);
            assert.match(result.errors[0].message,
                /a different image already exists under custom ID "s8\/taken\.png".*"their-hash", ours is "png-80".*set onConflict: overwrite to replace it/);
            assert.equal(emu.images.get("s8/taken.png")!.meta.owner, "someone");
        });

        it("8. onConflict fail stops with an error", async () => {
            const result = await up([...desired, taken({ onConflict: "fail" })]);
            assert.equal(result.errors.length, 1);
            assert.match(result.errors[0].message, /custom ID "s8\/taken\.png" already exists .* onConflict is fail/);
            assert.equal(emu.images.get("s8/taken.png")!.meta.owner, "someone");
        });

        it("8. onConflict overwrite deletes it and uploads ours", async () => {
            emu.resetCounters();
            const result = await up([...desired, taken({ onConflict: "overwrite" })]);
            assert.deepEqual(result.errors, []);
            assert.equal(emu.counters.deletes, 1);
            assert.equal(emu.counters.uploads, 1);
            const stored = emu.images.get("s8/taken.png")!;
            assert.equal(stored.meta[SOURCE_HASH_KEY], "png-80");
            assert.deepEqual(stored.bytes, pngBytes(80));
            assert.equal((unwrapSecrets(driver.state.get(urnOf("img-80"))!.outputs) as Props).adopted, false);
            await up(desired); // back to the main set
            assert.ok(!emu.images.has("s8/taken.png"));
        });

        it("8. an image with our source hash under the custom ID is adopted without a new upload", async () => {
            foreign("png-80");
            emu.resetCounters();
            const result = await up([...desired, taken()]);
            assert.deepEqual(result.errors, []);
            assert.equal(emu.counters.uploads, 0);
            assert.equal((unwrapSecrets(driver.state.get(urnOf("img-80"))!.outputs) as Props).adopted, true);
            assert.equal(emu.counters.patches, 1, "its metadata is brought in line with ours");
            assert.deepEqual(emu.images.get("s8/taken.png")!.meta, { [SOURCE_HASH_KEY]: "png-80" });
            desired.push(taken());
        });
    }

    it("9. destroy removes every image; destroying already-deleted images again succeeds", async () => {
        const snapshot: ResourceState[] = [...driver.state.values()];
        emu.resetCounters();
        const destroyed = await driver.destroy();
        assert.deepEqual(destroyed.errors, []);
        assert.equal(destroyed.counts.delete, snapshot.length);
        assert.equal(driver.state.size, 0);
        assert.equal(emu.images.size, 0);
        assert.equal(emu.counters.deletes, snapshot.length);

        for (const r of snapshot) driver.state.set(r.urn, r);
        emu.resetCounters();
        const again = await driver.destroy();
        assert.deepEqual(again.errors, []);
        assert.equal(again.counts.delete, snapshot.length);
        assert.equal(emu.counters.deletes, 0);
        assert.equal(driver.state.size, 0);
    });

    it("never shows a token in plain text in stored inputs/outputs, host output or errors", () => {
        const everything = [...seen, ...hostOutputs.map((o) => o())].join("\n");
        for (const token of TOKENS) assert.ok(!everything.includes(token), `token ${token.slice(0, 5)}… leaked`);
        assert.ok(rawCheckpoints.some((c) => c.includes(TOKEN_B)), "the stored tokens are there, wrapped as secrets");
    });
});
