import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { DesiredResource, EngineDriver, secret, UNKNOWN_VALUE, unwrapSecrets } from "../host/engine-driver";
import { Props } from "../host/provider-host";
import { captureImageRegistration } from "../host/serialized-provider";
import { parseS3Url } from "../../provider/s3-presign";

// s3rver ships without types; this is the part of its API used here.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const S3rver: new (opts: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void> } = require("s3rver");

const TOKEN = "tok-src-6a1f0e99d2";
const TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";
const urnOf = (name: string) => `urn:pulumi:host-test::sourcing-kit::${TYPE}::${name}`;

describe("CloudflareImage in the real host: sources and configuration", function () {
    let providerText: string;
    let secretOutputs: string[];
    let emu: Emulator;
    let origin: ImageOrigin;
    const drivers: EngineDriver[] = [];
    const seen: string[] = [];

    const image = (name: string, inputs: Props): DesiredResource => ({
        urn: urnOf(name),
        additionalSecretOutputs: secretOutputs,
        inputs: { __provider: providerText, accountId: "acc-test", ...inputs },
    });

    async function start(config: Props, env?: NodeJS.ProcessEnv): Promise<EngineDriver> {
        const d = await EngineDriver.start(config, { env });
        drivers.push(d);
        return d;
    }

    before(async () => {
        const reg = await captureImageRegistration();
        providerText = String(reg.inputs.__provider);
        secretOutputs = reg.additionalSecretOutputs;
        emu = await startEmulator({ tokens: [TOKEN] });
        origin = await startImageOrigin();
    });

    after(async () => {
        for (const d of drivers) {
            seen.push(d.host.output());
            await d.host.kill();
        }
        await emu?.close();
        await origin?.close();
        const everything = seen.join("\n");
        assert.ok(!everything.includes(TOKEN), "the token leaked into state, host output or an error");
    });

    describe("filePath and private S3 sources", () => {
        let driver: EngineDriver;
        let s3: InstanceType<typeof S3rver>;
        let s3Endpoint: string;
        let work: string;
        const current: DesiredResource[] = [];
        const upWith = async (d: DesiredResource) => {
            current.push(d);
            const result = await driver.up(current);
            seen.push(driver.plainTextCheckpoint(), ...result.errors.map((e) => e.message));
            return result;
        };

        before(async () => {
            work = fs.mkdtempSync(path.join(os.tmpdir(), "image-sources-"));
            s3 = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: path.join(work, "s3"), configureBuckets: [{ name: "private-photos" }] });
            s3Endpoint = `http://127.0.0.1:${(await s3.run()).port}`;
            const client = new S3Client({ region: "us-east-1", endpoint: s3Endpoint, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
            await client.send(new PutObjectCommand({ Bucket: "private-photos", Key: "shoes/red shoe.png", Body: pngBytes(77), ContentType: "image/png" }));
            client.destroy();
            driver = await start({
                "cloudflare:apiToken": secret(TOKEN),
                "aws:accessKey": "S3RVER",
                "aws:secretKey": secret("S3RVER"),
                "aws:region": "us-east-1",
            });
        });

        after(async () => {
            await s3?.close();
            fs.rmSync(work, { recursive: true, force: true });
        });

        it("uploads a local file by streaming it", async () => {
            const file = path.join(work, "local.png");
            fs.writeFileSync(file, pngBytes(42));
            const result = await upWith(image("file", { imageId: "src/local.png", filePath: file, sourceHash: "sha-42", apiBaseUrl: emu.baseUrl }));
            assert.deepEqual(result.errors, []);
            assert.deepEqual(emu.images.get("src/local.png")!.bytes, pngBytes(42));
            assert.equal((unwrapSecrets(driver.state.get(urnOf("file"))!.outputs) as Props).filename, "local.png");
        });

        it("presigns an s3:// url at create time; state keeps only s3://bucket/key, never a signature or a key", async () => {
            const url = "s3://private-photos/shoes/red%20shoe.png";
            assert.deepEqual(parseS3Url(url), { bucket: "private-photos", key: "shoes/red shoe.png" });
            const result = await upWith(image("s3", {
                imageId: "src/red-shoe.png", url, sourceHash: "etag-77", apiBaseUrl: emu.baseUrl,
                s3: { endpoint: s3Endpoint, forcePathStyle: true },
            }));
            assert.deepEqual(result.errors, []);
            const stored = emu.images.get("src/red-shoe.png")!;
            assert.deepEqual(stored.bytes, pngBytes(77));
            assert.match(stored.sourceUrl ?? "", /X-Amz-Signature=/, "Cloudflare fetched a presigned URL");
            const state = driver.checkpoint();
            assert.ok(!/X-Amz-|S3RVER/.test(state), "no signature or AWS credential in state");
            assert.equal((unwrapSecrets(driver.state.get(urnOf("s3"))!.outputs) as Props).url, url);
        });

        it("previews with unknown values: no failures, a planned update and create, no request", async () => {
            emu.resetCounters();
            const existing = driver.state.get(urnOf("file"))!;
            const plan = await driver.preview([
                { urn: existing.urn, additionalSecretOutputs: secretOutputs, inputs: { ...existing.inputs, apiToken: UNKNOWN_VALUE } },
                image("later", { imageId: "src/later.png", url: UNKNOWN_VALUE, sourceHash: UNKNOWN_VALUE, apiBaseUrl: emu.baseUrl }),
            ]);
            assert.deepEqual(plan.errors, []);
            assert.deepEqual(plan.counts, { update: 1, create: 1 });
            assert.equal(emu.counters.requests, 0);
        });

        it("a missing S3 object fails the create with the url in the message", async () => {
            const result = await upWith(image("s3-missing", {
                imageId: "src/missing.png", url: "s3://private-photos/nope.png", sourceHash: "x", apiBaseUrl: emu.baseUrl,
                s3: { endpoint: s3Endpoint, forcePathStyle: true },
            }));
            assert.equal(result.errors.length, 1);
            assert.match(result.errors[0].message, /^image "src\/missing\.png" from s3:\/\/private-photos\/nope\.png: POST \/accounts\/acc-test\/images\/v1: HTTP 4\d\d/);
            assert.ok(!result.errors[0].message.includes("X-Amz-Signature"));
            assert.equal(driver.state.size, 2);
            assert.deepEqual((await driver.destroy()).errors, []);
        });
    });

    describe("configuration handed to configure()", () => {
        it("uses sourcing-kit:apiBaseUrl, useBatchApi and rateLimit with the configured token, and stores no token", async () => {
            const driver = await start({
                "cloudflare:apiToken": secret(TOKEN),
                "sourcing-kit:apiBaseUrl": emu.baseUrl,
                "sourcing-kit:useBatchApi": "true",
                "sourcing-kit:rateLimit": JSON.stringify({ requests: 500, windowSeconds: 300 }),
            });
            emu.resetCounters();
            const images = [0, 1, 2].map((i) => image(`cfg-${i}`, { imageId: `cfg/${i}.png`, url: origin.url(`/img/${i}.png`), sourceHash: `png-${i}` }));
            const result = await driver.up(images);
            seen.push(driver.checkpoint(), ...result.errors.map((e) => e.message));
            assert.deepEqual(result.errors, []);
            assert.equal(emu.counters.byRoute["batch POST images/v1 200"], 3, JSON.stringify(emu.counters.byRoute));
            const outs = unwrapSecrets(driver.state.get(urnOf("cfg-0"))!.outputs) as Props;
            assert.equal(outs.apiToken, undefined, "a configured token is not copied into state");
            const destroyed = await driver.destroy();
            assert.deepEqual(destroyed.errors, []);
            assert.equal(emu.images.size, 0);
        });

        it("falls back to CLOUDFLARE_API_TOKEN in the host's environment", async () => {
            const driver = await start({}, { CLOUDFLARE_API_TOKEN: TOKEN });
            const result = await driver.up([image("env", { imageId: "env/0.png", url: origin.url("/img/0.png"), sourceHash: "png-0", apiBaseUrl: emu.baseUrl })]);
            assert.deepEqual(result.errors, []);
            assert.deepEqual((await driver.destroy()).errors, []);
        });

        it("without any token, the create fails naming apiToken, cloudflare:apiToken and CLOUDFLARE_API_TOKEN", async () => {
            const driver = await start({}, { CLOUDFLARE_API_TOKEN: "" });
            emu.resetCounters();
            const result = await driver.up([image("none", { imageId: "none/0.png", url: origin.url("/img/0.png"), sourceHash: "png-0", apiBaseUrl: emu.baseUrl })]);
            assert.equal(result.errors.length, 1);
            assert.match(result.errors[0].message, /apiToken.*cloudflare:apiToken.*CLOUDFLARE_API_TOKEN/);
            assert.equal(emu.counters.requests, 0);
        });

        it("a bad sourcing-kit:rateLimit fails with the key and the fix", async () => {
            const driver = await start({ "sourcing-kit:rateLimit": "fast" });
            const result = await driver.up([image("bad-config", { imageId: "x/0.png", url: origin.url("/img/0.png"), sourceHash: "h", apiBaseUrl: emu.baseUrl })]);
            assert.equal(result.errors.length, 1);
            assert.match(result.errors[0].message, /sourcing-kit:rateLimit must be JSON like/);
        });
    });
});
