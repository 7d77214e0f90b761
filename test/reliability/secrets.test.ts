// Issue 8.4: the bootstrap token, the scoped token, the S3 secret key and the Cloudinary secret never appear in plain
// text where a user, a log reader or a state file could see them. The stack program runs under mocks with all of
// them set (what the engine would store: registered inputs and component outputs, stack outputs, Pulumi log calls);
// then the images it declares (private S3 objects, presigned by the provider) are migrated through the real host.
// The other reliability files scan their own scenarios (state, host output, errors, Worker answers) the same way.
import { strict as assert } from "assert";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { promises as fs } from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, jpegBytes, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { DesiredResource, EngineDriver, isSecret, secret } from "../host/engine-driver";
import { Props } from "../host/provider-host";
import { RecordingMocks, settled } from "../program/mocks";
import { auditImages, captureProviders, CLEAN_AUDIT, expose, Exposure, GENEROUS_RATE_LIMIT, IMAGE_TYPE, providerConfig, urnOf } from "./harness";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require("s3rver");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const s3Accounts = require("s3rver/lib/models/account") as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };

const BOOTSTRAP = "tok-bootstrap-secrets-58c1e9a0f3";
/** What RecordingMocks answers as the ScopedApiToken's `value`. */
const SCOPED = "scoped-token-value-SECRET";
const S3_ACCESS_KEY = "AKIASECRETSTEST00004";
const S3_SECRET = "s3-secret-secrets-Hq7Vz2Pw9Kd";
const CLOUDINARY_SECRET = "cld-secret-secrets-Rb5Ny3Xs";
const WEBHOOK_SECRET = "whsec-secrets-7a0c2e4f61";
const SECRETS = { bootstrap: BOOTSTRAP, scoped: SCOPED, s3Secret: S3_SECRET, cloudinarySecret: CLOUDINARY_SECRET, webhookSecret: WEBHOOK_SECRET };

/** JSON with every secret-wrapped value (Pulumi's wire encoding) shown as "[secret]": what a state reader sees. */
function plainText(value: unknown): string {
    return JSON.stringify(value, (_k, v) => (isSecret(v) ? "[secret]" : v));
}

/** Resolves the program's outputs as `pulumi stack output --show-secrets` would NOT: secret Outputs stay "[secret]". */
async function shown(value: unknown): Promise<unknown> {
    if (pulumi.Output.isInstance(value)) {
        const output = value as pulumi.Output<unknown>;
        const isSecretOutput = await (output as unknown as { isSecret: Promise<boolean> }).isSecret;
        if (isSecretOutput) return "[secret]";
        return shown(await new Promise<unknown>((resolve) => output.apply((v) => { resolve(v); return v; })));
    }
    if (Array.isArray(value)) return Promise.all(value.map(shown));
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await shown(v)] as const)));
    }
    return value;
}

describe("reliability: secrets never in plain text (program under mocks, then the real host)", function () {
    this.timeout(120_000);
    let s3: { close(): Promise<void> };
    let s3Endpoint: string;
    let cloudinary: http.Server;
    let origin: ImageOrigin;
    let emu: Emulator;
    let driver: EngineDriver;
    let dir: string;
    const exposure = new Exposure();
    const registered: { type: string; name: string; inputs: Props }[] = [];
    const savedEnv = { ...process.env };
    const logged: string[] = [];
    const savedLog = { ...pulumi.log };

    before(async () => {
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "sk-secrets-s3-"));
        s3Accounts.DUMMY_ACCOUNT.createKeyPair(S3_ACCESS_KEY, S3_SECRET);
        s3 = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: dir, configureBuckets: [{ name: "private-media" }] });
        s3Endpoint = `http://127.0.0.1:${((await (s3 as unknown as { run(): Promise<AddressInfo> }).run()) as AddressInfo).port}`;
        const client = new S3Client({ region: "us-east-1", endpoint: s3Endpoint, forcePathStyle: true, credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET } });
        for (const [Key, Body] of [["shop/a.png", pngBytes(41)], ["shop/b.jpg", jpegBytes(42)], ["shop/c.png", pngBytes(43)]] as const) {
            await client.send(new PutObjectCommand({ Bucket: "private-media", Key, Body, ContentType: Key.endsWith(".png") ? "image/png" : "image/jpeg" }));
        }
        client.destroy();

        origin = await startImageOrigin();
        cloudinary = http.createServer((_req, res) => {
            res.writeHead(200, { "content-type": "application/json" });
            res.end(JSON.stringify({ resources: [1, 2].map((i) => ({
                public_id: `brand/logo-${i}`, format: "png", bytes: 70, secure_url: origin.url(`/img/${50 + i}.png`), etag: `etag-${i}`, type: "upload",
            })) }));
        });
        await new Promise<void>((resolve) => cloudinary.listen(0, "127.0.0.1", resolve));
        const cloudinaryUrl = `http://127.0.0.1:${(cloudinary.address() as AddressInfo).port}`;

        for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "CLOUDFLARE_API_TOKEN", "CLOUDINARY_API_SECRET"]) delete process.env[k];
        for (const level of ["debug", "info", "warn", "error"] as const) {
            (pulumi.log as Record<string, unknown>)[level] = (message: string) => void logged.push(`${level}: ${message}`);
        }
        const mocks = new RecordingMocks();
        await pulumi.runtime.setMocks(mocks, "sourcing-kit", "secrets", false);
        pulumi.runtime.setAllConfig({
            "cloudflare:apiToken": BOOTSTRAP,
            "sourcing-kit:accountId": "0123456789abcdef0123456789abcdef",
            "sourcing-kit:accountHash": "hash-test",
            // No Cloudflare here (the real API URL): the pre-flight's messages are checked for the token in test/components/preflight.test.ts.
            "sourcing-kit:preflight": "off",
            "sourcing-kit:sources": JSON.stringify([
                { kind: "s3", bucket: "private-media", prefix: "shop/", endpoint: s3Endpoint, forcePathStyle: true, region: "us-east-1", access: "private" },
                { kind: "cloudinary", cloudName: "demo", apiKey: "cld-key-1", apiBaseUrl: cloudinaryUrl },
            ]),
            "sourcing-kit:cloudinaryApiSecret": CLOUDINARY_SECRET,
            "sourcing-kit:webhookSecret": WEBHOOK_SECRET,
            "sourcing-kit:redirects": JSON.stringify({ zoneId: "0123456789abcdef0123456789abcdef", routePattern: "img.example.com/*", fallback: "404" }),
            "sourcing-kit:exportMapping": "true",
            "aws:accessKey": S3_ACCESS_KEY,
            "aws:secretKey": S3_SECRET,
        }, ["cloudflare:apiToken", "sourcing-kit:cloudinaryApiSecret", "sourcing-kit:webhookSecret", "aws:secretKey"]);

        // What the engine would store: each resource's registered inputs and each component's registered outputs.
        const monitor = pulumi.runtime.getMonitor() as unknown as {
            registerResource(req: { getType(): string; getName(): string; getObject(): { toJavaScript(): Props } | undefined }, cb: unknown): unknown;
            registerResourceOutputs(req: { getUrn(): string; getOutputs(): { toJavaScript(): Props } | undefined }, cb: unknown): unknown;
        };
        const register = monitor.registerResource.bind(monitor);
        monitor.registerResource = (req, cb) => {
            const inputs = req.getObject()?.toJavaScript() ?? {};
            registered.push({ type: req.getType(), name: req.getName(), inputs });
            exposure.add(`registered ${req.getType()} ${req.getName()}`, plainText(inputs));
            return register(req, cb);
        };
        const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
        monitor.registerResourceOutputs = (req, cb) => {
            exposure.add(`component outputs ${req.getUrn()}`, plainText(req.getOutputs()?.toJavaScript() ?? {}));
            return registerOutputs(req, cb);
        };

        // The stack program, exactly as `pulumi up` runs it.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const program = require("../../index") as () => Promise<Record<string, unknown>>;
        const outputs = await shown(await program());
        await settled();
        exposure.add("stack outputs", JSON.stringify(outputs));
        // The Pulumi SDK's own debug lines echo every RegisterResource RPC answer, secret values included (shown only with
        // `pulumi up --debug`); they are Pulumi's, not this project's, and are left out of the scan.
        const sdkRpcDebug = (line: string) => /^debug: RegisterResource(Outputs)? RPC /.test(line);
        exposure.add("pulumi log", logged.filter((l) => !sdkRpcDebug(l)).join("\n"));
    });

    after(async () => {
        Object.assign(pulumi.log, savedLog);
        process.env = savedEnv;
        pulumi.runtime.setAllConfig({}, []);
        await driver?.host.kill();
        await emu?.close();
        await origin?.close();
        await s3?.close();
        await new Promise<void>((resolve) => (cloudinary ? cloudinary.close(() => resolve()) : resolve()));
        if (dir) await fs.rm(dir, { recursive: true, force: true });
    });

    it("declares the images of both sources, with the tokens only as secret inputs", () => {
        const images = registered.filter((r) => r.type === IMAGE_TYPE);
        assert.equal(images.length, 5, registered.map((r) => `${r.type} ${r.name}`).join("\n"));
        for (const image of images) assert.ok(isSecret(image.inputs.apiToken), `${image.name}.apiToken is a secret`);
        assert.ok(images.some((i) => String(i.inputs.url).startsWith("s3://private-media/")), "private S3 objects stay s3:// in state");
        assert.ok(logged.some((l) => /planned/.test(l)), "the sets logged their plan");
    });

    it("migrates those images through the real host, presigning with the S3 keys from config", async () => {
        const provider = (await captureProviders()).image;
        emu = await startEmulator({ tokens: [SCOPED, BOOTSTRAP], rateLimit: GENEROUS_RATE_LIMIT });
        driver = await EngineDriver.start(providerConfig(BOOTSTRAP, { "aws:accessKey": S3_ACCESS_KEY, "aws:secretKey": secret(S3_SECRET) }), undefined, 8);
        exposure.watch("host output", driver.host.output);
        const desired: DesiredResource[] = registered.filter((r) => r.type === IMAGE_TYPE).map((r) => ({
            urn: urnOf(IMAGE_TYPE, r.name),
            additionalSecretOutputs: provider.secretOutputs,
            inputs: { ...r.inputs, __provider: provider.text, apiBaseUrl: emu.baseUrl, accountId: emu.accountId },
        }));
        const result = await driver.up(desired);
        expose(exposure, "up", driver, result.errors);
        assert.deepEqual(result.errors, []);
        assert.deepEqual(auditImages(emu, driver, desired), CLEAN_AUDIT);
        assert.ok([...emu.images.values()].some((img) => /X-Amz-Signature=/.test(img.sourceUrl ?? "")), "Cloudflare fetched a presigned URL");
        // A failing create (the object is gone) must not show the presigned URL's secret either.
        const s3Image = desired.find((d) => String(d.inputs.url).startsWith("s3://"))!;
        const broken = { ...s3Image, urn: urnOf(IMAGE_TYPE, "broken"), inputs: { ...s3Image.inputs, imageId: "secrets/broken.png", url: "s3://private-media/shop/missing.png" } };
        const failed = await driver.up([...desired, broken]);
        expose(exposure, "failing up", driver, failed.errors);
        assert.equal(failed.errors.length, 1);
        assert.match(failed.errors[0].message, /secrets\/broken\.png/);
    });

    it("shows none of the secrets in registered inputs, component or stack outputs, logs, state, host output or errors", () => {
        assert.deepEqual(exposure.leaks(SECRETS), []);
        // A presigned URL is a bearer credential for its lifetime: it must not be stored or shown either.
        assert.deepEqual(exposure.leaks({ presignedUrl: "X-Amz-Signature=", presignedCredential: "X-Amz-Credential=" }), []);
        console.log(`      scanned ${exposure.size.toLocaleString("en-US")} characters for ${Object.keys(SECRETS).length} secrets`);
    });
});
