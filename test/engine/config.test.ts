// Stack config as the real engine hands it to the program and to the `pulumi-nodejs` provider's Configure:
// a secret token set with `pulumi config set --secret`, its rotation, `sourcing-kit:rateLimit`, a bad stack
// file, and `retainOnDelete` on destroy.
import { strict as assert } from "assert";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { describeEngine } from "./cli";
import { EngineProject, imageOps } from "./project";

const OLD_TOKEN = "engine-config-token-2026-11";
const NEW_TOKEN = "engine-config-token-2026-12";

const writes = (emu: Emulator) => emu.counters.uploads + emu.counters.patches + emu.counters.deletes;

function urlSource(origin: ImageOrigin, name: string, count: number) {
    const urls = Array.from({ length: count }, (_, i) => {
        origin.register(`/${name}/${i}.png`, { body: pngBytes(1000 + i), contentType: "image/png" });
        return origin.url(`/${name}/${i}.png`);
    });
    return { kind: "urls", name, urls, idPrefix: name };
}

describeEngine("real engine: stack config reaches the program and the provider", function () {
    this.timeout(300_000);
    let emu: Emulator;
    let origin: ImageOrigin;
    let project: EngineProject;

    before(async () => {
        emu = await startEmulator({ tokens: [OLD_TOKEN], rateLimit: { requests: 100_000, windowSeconds: 300 } });
        origin = await startImageOrigin();
        // No CLOUDFLARE_API_TOKEN anywhere: the token comes from the stack's secret config only.
        project = await EngineProject.create();
    });
    after(async () => {
        await project?.close();
        await origin?.close();
        await emu?.close();
    });

    const base = () => ({
        "sourcing-kit:apiBaseUrl": emu.baseUrl,
        "sourcing-kit:accountId": emu.accountId,
        "sourcing-kit:accountHash": emu.accountHash,
        "sourcing-kit:scopedToken": false,
    });

    describe("cloudflare:apiToken set with `pulumi config set --secret`", () => {
        const STACK = "token";
        before(async () => {
            await project.initStack(STACK, { ...base(), "sourcing-kit:sources": [urlSource(origin, "tok", 3)] });
            await project.pulumi(["config", "set", "--secret", "cloudflare:apiToken", OLD_TOKEN, "-s", STACK]);
        });

        it("is stored encrypted in the stack file and reaches the provider: up uploads with it", async () => {
            const stackFile = await project.readFile(`Pulumi.${STACK}.yaml`);
            assert.ok(!stackFile.includes(OLD_TOKEN), "the stack file holds the secret encrypted");
            assert.match(stackFile, /cloudflare:apiToken'?:\s*\{?\s*secure:\s*'?v1:/);
            const up = await project.update("up", STACK);
            assert.deepEqual(imageOps(up.done), { create: 3 });
            assert.equal(emu.images.size, 3);
        });

        it("a rotated token touches no image; the new one is what the provider then uses", async () => {
            emu.addToken(NEW_TOKEN);
            await project.pulumi(["config", "set", "--secret", "cloudflare:apiToken", NEW_TOKEN, "-s", STACK]);
            emu.resetCounters();
            const up = await project.update("up", STACK, ["--expect-no-changes"]);
            assert.deepEqual(imageOps(up.done), { same: 3 });
            assert.equal(writes(emu), 0);
            // The old token is revoked: only the new one, from config, can delete.
            emu.revokeToken(OLD_TOKEN);
            const destroy = await project.update("destroy", STACK);
            assert.deepEqual(imageOps(destroy.done), { delete: 3 });
            assert.equal(emu.images.size, 0);
        });
    });

    describe("sourcing-kit:rateLimit", () => {
        const STACK = "ratelimit";
        // Cloudflare-like, scaled down: 4 requests per 2 s per token; the stack config says the same.
        before(async () => {
            emu.setRateLimit({ requests: 4, windowSeconds: 2 });
            await project.initStack(STACK, {
                ...base(),
                "sourcing-kit:rateLimit": { requests: 4, windowSeconds: 2 },
                // The pre-flight's reads come from the program, before the provider's first upload and outside its
                // budget (real budgets leave them room: 1,100 of 1,200); this test measures the provider's budget alone.
                "sourcing-kit:preflight": "off",
                "sourcing-kit:sources": [urlSource(origin, "rate", 10)],
            });
            await project.pulumi(["config", "set", "--secret", "cloudflare:apiToken", NEW_TOKEN, "-s", STACK]);
        });
        after(() => emu.setRateLimit({ requests: 100_000, windowSeconds: 300 }));

        it("is what the emulator sees: 10 uploads at --parallel 10 never exceed 4 requests in 2 s, no 429", async () => {
            emu.resetCounters();
            const up = await project.update("up", STACK, ["--parallel", "10"]);
            assert.deepEqual(imageOps(up.done), { create: 10 });
            assert.equal(emu.counters.http429, 0);
            assert.ok(emu.counters.maxRequestsInWindow <= 4, `peak ${emu.counters.maxRequestsInWindow} requests in a 2 s window`);
            assert.equal(emu.counters.uploads, 10);
        });
    });

    describe("a bad stack config", () => {
        const STACK = "bad";
        before(async () => {
            await project.initStack(STACK, {
                "sourcing-kit:apiBaseUrl": emu.baseUrl,
                "sourcing-kit:accountHash": emu.accountHash,
                "sourcing-kit:onConflict": "replace",
                "sourcing-kit:sources": [{ kind: "s3", prefix: "photos/" }, { kind: "urls", urls: ["not a url"] }],
            });
        });

        it("fails `pulumi preview` with the program's list of every problem, and sends nothing", async () => {
            emu.resetCounters();
            const { result } = await project.preview(STACK, [], { allowFailure: true });
            assert.notEqual(result.code, 0);
            const output = result.stdout + result.stderr;
            assert.match(output, /the stack configuration has \d+ problems/);
            for (const key of ["sourcing-kit:accountId", "sourcing-kit:onConflict", "sourcing-kit:sources[0].bucket", "sourcing-kit:sources[1].urls[0]"]) {
                assert.ok(output.includes(key), `names ${key}:\n${output}`);
            }
            assert.ok(!/at \S+ \(.*\.ts:\d+:\d+\)/.test(output), `no stack trace:\n${output}`);
            assert.equal(emu.counters.requests, 0);
        });
    });

    describe("sourcing-kit:retainOnDelete", () => {
        const STACK = "retain";
        before(async () => {
            await project.initStack(STACK, { ...base(), "sourcing-kit:sources": [urlSource(origin, "keep", 3)] });
            await project.pulumi(["config", "set", "--secret", "cloudflare:apiToken", NEW_TOKEN, "-s", STACK]);
            await project.update("up", STACK);
        });

        it("as the README says: set it, up records it with no API call, destroy leaves the images", async () => {
            await project.pulumi(["config", "set", "sourcing-kit:retainOnDelete", "true", "-s", STACK]);
            emu.resetCounters();
            await project.update("up", STACK);
            assert.equal(writes(emu), 0);
            const state = await project.stateImages(STACK);
            assert.ok([...state.values()].every((r) => r.retainOnDelete === true), "every image is recorded retainOnDelete");
            const destroy = await project.update("destroy", STACK);
            assert.deepEqual(imageOps(destroy.done), { delete: 3 });
            assert.equal(emu.counters.deletes, 0);
            assert.deepEqual([...emu.images.keys()].filter((k) => k.startsWith("keep/")).length, 3);
            assert.deepEqual((await project.state(STACK)).checkpoint.latest?.resources ?? [], []);
        });
    });
});
