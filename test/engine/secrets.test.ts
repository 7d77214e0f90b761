// Secrets with the real CLI: the bootstrap token, the S3 secret key and the Cloudinary secret are set with
// `pulumi config set --secret`, reach the program and the provider (private S3 objects are presigned with the keys
// the engine hands to Configure), and appear in plain text nowhere: not in the real state file, not in
// `pulumi stack export`, not in stack outputs, not in anything the CLI printed.
import { strict as assert } from "assert";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { promises as fs } from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, jpegBytes, pngBytes, startImageOrigin } from "../emulator/fixtures";
import { describeEngine } from "./cli";
import { CliResult, EngineProject, imageOps } from "./project";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require("s3rver");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const s3Accounts = require("s3rver/lib/models/account") as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };

const STACK = "secrets";
const SECRETS = {
    bootstrapToken: "tok-engine-secrets-5d0c8e1a77",
    s3SecretKey: "s3-engine-secret-Mq4Xv8Lp2Rz",
    cloudinarySecret: "cld-engine-secret-Tw6Jb3Nc",
};
const S3_ACCESS_KEY = "AKIAENGINESECRETS001";

describeEngine("real engine: secrets in config, never in plain text in state, export, outputs or logs", function () {
    this.timeout(300_000);
    let emu: Emulator;
    let origin: ImageOrigin;
    let s3: { close(): Promise<void> };
    let s3Dir: string;
    let cloudinary: http.Server;
    let project: EngineProject;
    const printed: CliResult[] = [];

    before(async () => {
        s3Dir = await fs.mkdtemp(path.join(os.tmpdir(), "sk-engine-s3-"));
        s3Accounts.DUMMY_ACCOUNT.createKeyPair(S3_ACCESS_KEY, SECRETS.s3SecretKey);
        s3 = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: s3Dir, configureBuckets: [{ name: "private-media" }] });
        const s3Endpoint = `http://127.0.0.1:${((await (s3 as unknown as { run(): Promise<AddressInfo> }).run()) as AddressInfo).port}`;
        const client = new S3Client({ region: "us-east-1", endpoint: s3Endpoint, forcePathStyle: true, credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: SECRETS.s3SecretKey } });
        for (const [Key, Body] of [["shop/a.png", pngBytes(71)], ["shop/b.jpg", jpegBytes(72)]] as const) {
            await client.send(new PutObjectCommand({ Bucket: "private-media", Key, Body, ContentType: Key.endsWith(".png") ? "image/png" : "image/jpeg" }));
        }
        client.destroy();

        origin = await startImageOrigin();
        cloudinary = http.createServer((req, res) => {
            // The Admin API is called with Basic auth: api key and secret.
            const auth = Buffer.from((req.headers.authorization ?? "").replace(/^Basic /, ""), "base64").toString();
            if (auth !== `cld-key-1:${SECRETS.cloudinarySecret}`) {
                res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "Invalid credentials" } }));
                return;
            }
            res.writeHead(200, { "content-type": "application/json" });
            res.end(JSON.stringify({ resources: [1, 2].map((i) => ({
                public_id: `brand/logo-${i}`, format: "png", bytes: 70, secure_url: origin.url(`/img/${80 + i}.png`), etag: `etag-${i}`, type: "upload",
            })) }));
        });
        await new Promise<void>((resolve) => cloudinary.listen(0, "127.0.0.1", resolve));
        const cloudinaryUrl = `http://127.0.0.1:${(cloudinary.address() as AddressInfo).port}`;

        emu = await startEmulator({ tokens: [SECRETS.bootstrapToken], rateLimit: { requests: 100_000, windowSeconds: 300 } });
        project = await EngineProject.create();
        await project.initStack(STACK, {
            "sourcing-kit:apiBaseUrl": emu.baseUrl,
            "sourcing-kit:accountId": emu.accountId,
            "sourcing-kit:accountHash": emu.accountHash,
            "sourcing-kit:scopedToken": false,
            "sourcing-kit:exportMapping": true,
            "aws:accessKey": S3_ACCESS_KEY,
            "aws:region": "us-east-1",
            "sourcing-kit:sources": [
                { kind: "s3", name: "shop", bucket: "private-media", prefix: "shop/", endpoint: s3Endpoint, forcePathStyle: true, access: "private" },
                { kind: "cloudinary", name: "brand", cloudName: "demo", apiKey: "cld-key-1", apiBaseUrl: cloudinaryUrl },
            ],
        });
        for (const [key, value] of [["cloudflare:apiToken", SECRETS.bootstrapToken], ["aws:secretKey", SECRETS.s3SecretKey],
            ["sourcing-kit:cloudinaryApiSecret", SECRETS.cloudinarySecret]]) {
            printed.push(await project.pulumi(["config", "set", "--secret", key, value, "-s", STACK]));
        }
    });
    after(async () => {
        await project?.close();
        await new Promise<void>((resolve) => (cloudinary ? cloudinary.close(() => resolve()) : resolve()));
        await s3?.close();
        await origin?.close();
        await emu?.close();
        if (s3Dir) await fs.rm(s3Dir, { recursive: true, force: true });
    });

    it("migrates the private S3 objects (presigned with the keys from config) and the Cloudinary images", async () => {
        const preview = await project.pulumi(["preview", "-s", STACK, "--diff"]);
        printed.push(preview);
        const up = await project.update("up", STACK);
        printed.push(up.result);
        assert.deepEqual(imageOps(up.done), { create: 4 });
        assert.equal(emu.images.size, 4);
        assert.ok([...emu.images.values()].some((img) => /X-Amz-Signature=/.test(img.sourceUrl ?? "")), "Cloudflare fetched a presigned URL");
        printed.push(await project.pulumi(["stack", "output", "-s", STACK, "--json"]));
        printed.push(await project.update("refresh", STACK).then((r) => r.result));
    });

    it("no secret, and no presigned URL, in the state file, the stack file, stack export, outputs or CLI output", async () => {
        const exported = await project.pulumi(["stack", "export", "-s", STACK]);
        const places: Record<string, string> = {
            "state file": await fs.readFile(project.stateFile(STACK), "utf8"),
            "Pulumi.secrets.yaml": await project.readFile(`Pulumi.${STACK}.yaml`),
            "pulumi stack export": exported.stdout,
            "CLI output": printed.map((r) => r.stdout + r.stderr).join("\n"),
        };
        const leaks: string[] = [];
        for (const [place, text] of Object.entries(places)) {
            for (const [name, value] of Object.entries({ ...SECRETS, presignedSignature: "X-Amz-Signature=", presignedCredential: "X-Amz-Credential=" })) {
                if (text.includes(value)) leaks.push(`${name} in ${place}`);
            }
        }
        assert.deepEqual(leaks, []);
        // The token the images hold is a secret in state (ciphertext), not absent: refresh and destroy need it.
        const images = JSON.parse(exported.stdout).deployment.resources.filter((r: { type: string }) => r.type.endsWith("CloudflareImage"));
        assert.equal(images.length, 4);
        console.log(`      scanned ${Object.values(places).reduce((n, t) => n + t.length, 0).toLocaleString("en-US")} characters in ${Object.keys(places).length} places`);
    });

    it("destroy deletes with the token from config", async () => {
        const destroy = await project.update("destroy", STACK);
        assert.deepEqual(imageOps(destroy.done), { delete: 4 });
        assert.equal(emu.images.size, 0);
    });
});
