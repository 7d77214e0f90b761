import * as assert from "assert";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { promises as fs } from "fs";
import { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { RecordingMocks, recordRegistrationOptions, Registered, RegistrationOptions, registeredUrns, resolveOutputs, settled } from "./mocks";
import { ROOT, stackConfig } from "./stack-files";

// The stack program, as `pulumi preview` runs it: `export = async () => outputs`.
import program = require("../../index");

// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require("s3rver");

const IMAGE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";
const ROWS = "pulumi-nodejs:dynamic/sourcing-kit:RedirectRows";
const SECRET_MARK = "SECRET";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"; // how the engine (and the mocks) receive a value not known in preview // every secret value in these tests contains it; no output may

interface Run {
    mocks: RecordingMocks;
    options: RegistrationOptions[];
    outputs: Record<string, unknown>;
}

/** Runs the whole program under mocks in preview mode, with `config` as the stack's configuration. */
async function preview(stack: string, config: Record<string, string>, secretKeys: string[], mocks = new RecordingMocks()): Promise<Run> {
    await pulumi.runtime.setMocks(mocks, "sourcing-kit", stack, true);
    pulumi.runtime.setAllConfig(config, secretKeys);
    const options = recordRegistrationOptions();
    const outputs = (await resolveOutputs(await program())) as Record<string, unknown>;
    await settled();
    return { mocks, options, outputs };
}

// How the engine (and so the mocks) sees a secret input: a signed wrapper around the value.
const isSecretValue = (v: unknown): boolean =>
    typeof v === "object" && v !== null && (v as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig;
const unwrapSecret = (v: unknown): unknown => (isSecretValue(v) ? (v as { value: unknown }).value : v);

function countByType(resources: Registered[]): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of resources) counts[r.type] = (counts[r.type] ?? 0) + 1;
    return counts;
}

function parentType(options: RegistrationOptions[], r: { type: string; name: string }): string | undefined {
    const parent = options.find((o) => o.type === r.type && o.name === r.name)?.parent;
    if (!parent) return undefined;
    return parent.split("::")[2]!.split("$").pop();
}

describe("the stack program under mocks: dev stack (S3 sample, redirects, scoped token)", () => {
    let server: { close(): Promise<void> };
    let dir: string;
    let run: Run;
    let devConfig: Record<string, string>;
    const devSecretKeys = ["cloudflare:apiToken", "sourcing-kit:webhookSecret", "aws:secretKey"];
    const savedEnv = { ...process.env };

    before(async () => {
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "sk-program-s3-"));
        server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: dir, configureBuckets: [{ name: "acme-media-dev" }] });
        const { port } = (await (server as unknown as { run(): Promise<AddressInfo> }).run()) as AddressInfo;
        const endpoint = `http://127.0.0.1:${port}`;
        const client = new S3Client({ region: "eu-west-1", endpoint, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
        const objects: [string, string][] = [
            ["products/shoes/red.jpg", "red shoe jpeg"],
            ["products/shoes/blue.png", "blue shoe png"],
            ["products/shoes/sale/blue.png", "blue shoe png"],
            ["products/shoes/_thumbs/red.jpg", "thumbnail, excluded"],
            ["products/price-list.pdf", "not an image"],
            ["products/banner.webp", "banner webp"],
            ["marketing/outside.jpg", "outside the prefix"],
        ];
        for (const [Key, Body] of objects) await client.send(new PutObjectCommand({ Bucket: "acme-media-dev", Key, Body: Buffer.from(Body) }));
        client.destroy();

        // The dev stack file as committed, with its bucket served by s3rver and the secrets a user would set.
        // No Cloudflare here: the pre-flight's calls are tested against the emulator (test/components/preflight*.ts).
        const config = stackConfig("dev", {
            "sourcing-kit:preflight": "off",
            "cloudflare:apiToken": `bootstrap-${SECRET_MARK}`,
            "sourcing-kit:webhookSecret": `whsec-${SECRET_MARK}`,
            "aws:accessKey": "S3RVER",
            "aws:secretKey": "S3RVER",
        });
        const sources = JSON.parse(config["sourcing-kit:sources"]!) as Record<string, unknown>[];
        sources[0] = { ...sources[0], endpoint, forcePathStyle: true };
        config["sourcing-kit:sources"] = JSON.stringify(sources);
        for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "CLOUDFLARE_API_TOKEN"]) delete process.env[k];
        devConfig = config;
        run = await preview("dev", devConfig, devSecretKeys);
    });
    after(async () => {
        process.env = savedEnv;
        pulumi.runtime.setAllConfig({}, []); // later test files must not see this stack's config
        await server?.close();
        await fs.rm(dir, { recursive: true, force: true });
    });

    it("declares the token, one image set, its images and the redirect layer, and nothing else", () => {
        const counts = countByType(run.mocks.resources);
        assert.deepStrictEqual(counts, {
            "sourcing-kit:index:ScopedApiToken": 1,
            "cloudflare:index/apiToken:ApiToken": 1,
            "sourcing-kit:index:MigratedImageSet": 1,
            [IMAGE]: 3,
            "sourcing-kit:index:RedirectLayer": 1,
            "cloudflare:index/d1Database:D1Database": 1,
            [ROWS]: 1,
            "cloudflare:index/workersScript:WorkersScript": 1,
            "cloudflare:index/workersRoute:WorkersRoute": 1,
        });
    });

    it("parents every child under its component, with stable readable names", () => {
        const byType = (type: string) => run.mocks.ofType(type);
        assert.deepStrictEqual(byType("sourcing-kit:index:MigratedImageSet").map((r) => r.name), ["product-photos"]);
        for (const image of byType(IMAGE)) assert.strictEqual(parentType(run.options, image), "sourcing-kit:index:MigratedImageSet", image.name);
        for (const type of ["cloudflare:index/d1Database:D1Database", ROWS, "cloudflare:index/workersScript:WorkersScript", "cloudflare:index/workersRoute:WorkersRoute"]) {
            for (const r of byType(type)) assert.strictEqual(parentType(run.options, r), "sourcing-kit:index:RedirectLayer", `${type} ${r.name}`);
        }
        assert.strictEqual(parentType(run.options, byType("cloudflare:index/apiToken:ApiToken")[0]!), "sourcing-kit:index:ScopedApiToken");
        assert.ok(registeredUrns().every((urn) => urn.startsWith("urn:pulumi:dev::sourcing-kit::")));
    });

    it("plans the sample's images from the bucket: private objects as s3:// URLs under the idPrefix, with the scoped token", () => {
        const images = run.mocks.ofType(IMAGE).map((r) => r.inputs).sort((a, b) => String(a.imageId).localeCompare(String(b.imageId)));
        assert.deepStrictEqual(images.map((i) => [i.imageId, i.url]), [
            ["dev/products/banner.webp", "s3://acme-media-dev/products/banner.webp"],
            ["dev/products/shoes/blue.png", "s3://acme-media-dev/products/shoes/blue.png"],
            ["dev/products/shoes/red.jpg", "s3://acme-media-dev/products/shoes/red.jpg"],
        ]);
        for (const image of images) {
            assert.strictEqual(image.accountId, "9a7806061c88ada191ed06f989cc3dac");
            assert.ok(isSecretValue(image.apiToken), "the token input is a secret");
            assert.strictEqual(unwrapSecret(image.apiToken), `scoped-token-value-${SECRET_MARK}`, "images are written with the scoped token");
            assert.strictEqual(image.onConflict, "adopt");
        }
    });

    it("gives the token Images write and D1 write on the account, expiring as configured", () => {
        const [token] = run.mocks.ofType("cloudflare:index/apiToken:ApiToken");
        assert.deepStrictEqual(token!.inputs, {
            name: "sourcing-kit dev migration",
            policies: [{
                effect: "allow",
                resources: '{"com.cloudflare.api.account.9a7806061c88ada191ed06f989cc3dac":"*"}',
                permissionGroups: [{ id: "618ec6c64a3a42f8b08bdcb147ded4e4" }, { id: "09b2857d1c31407795e75e3fed8617a1" }],
            }],
            expiresOn: "2027-06-30T00:00:00Z",
        });
    });

    it("creates the D1 database, binds it to the Worker with the secrets as secret_text, and routes the dev hostname", () => {
        const [db] = run.mocks.ofType("cloudflare:index/d1Database:D1Database");
        assert.deepStrictEqual(db!.inputs, { accountId: "9a7806061c88ada191ed06f989cc3dac", name: "sourcing-kit-dev-redirects" });
        const [worker] = run.mocks.ofType("cloudflare:index/workersScript:WorkersScript");
        assert.strictEqual(worker!.inputs.scriptName, "sourcing-kit-dev-redirects");
        assert.ok(isSecretValue(worker!.inputs.bindings), "the bindings hold secrets, so the whole list is stored as a secret");
        const bindings = unwrapSecret(worker!.inputs.bindings) as { type: string; name: string; id?: string; text?: string }[];
        assert.deepStrictEqual(bindings.find((b) => b.type === "d1"), { type: "d1", name: "DB", id: "d1-uuid-0001" });
        assert.deepStrictEqual(bindings.filter((b) => b.type === "secret_text").map((b) => b.name).sort(), ["IMAGES_API_TOKEN", "WEBHOOK_SECRET"]);
        assert.strictEqual(bindings.find((b) => b.name === "IMAGES_API_TOKEN")!.text, `scoped-token-value-${SECRET_MARK}`);
        assert.ok(!bindings.some((b) => b.type === "plain_text" && String(b.text).includes(SECRET_MARK)), "no secret in a plain_text binding");
        assert.deepStrictEqual(bindings.find((b) => b.name === "ORIGIN_URL"), { type: "plain_text", name: "ORIGIN_URL", text: "https://media-origin.dev.acme-shop.example" });
        const [route] = run.mocks.ofType("cloudflare:index/workersRoute:WorkersRoute");
        assert.deepStrictEqual(route!.inputs, { zoneId: "3f2a9c0d8b7e6f5a4b3c2d1e0f9a8b7c", pattern: "dev.acme-shop.example/media/*", script: "sourcing-kit-dev-redirects" });
    });

    it("previews a first run too, while the new token's value is still unknown", async () => {
        const first = await preview("dev", devConfig, devSecretKeys, new RecordingMocks(undefined, { tokenValueKnown: false }));
        assert.deepStrictEqual(countByType(first.mocks.resources), countByType(run.mocks.resources));
        for (const image of first.mocks.ofType(IMAGE)) assert.ok(pulumi.isUnknown(unwrapSecret(image.inputs.apiToken)), image.name);
        const bindings = unwrapSecret(first.mocks.ofType("cloudflare:index/workersScript:WorkersScript")[0]!.inputs.bindings);
        const tokenBinding = (bindings as { name: string; text: unknown }[]).find((b) => b.name === "IMAGES_API_TOKEN")!;
        assert.ok(pulumi.isUnknown(tokenBinding.text), "the Worker's token binding waits for the token");
        assert.deepStrictEqual(first.outputs.sources, run.outputs.sources);
    });

    it("exports counts, the hostname, the token id and where the mapping lives, and no secret value", () => {
        assert.deepStrictEqual(run.outputs, {
            sources: { "product-photos": { planned: 3, skipped: { "not-an-image": 1 }, duplicates: 1 } },
            imagesPlanned: 3,
            mappedUrls: 4,
            tokenId: "migration-token-id",
            redirectHostname: "dev.acme-shop.example",
            redirectDatabase: { name: "sourcing-kit-dev-redirects", id: "d1-uuid-0001", query: "SELECT path, location, image_id FROM redirects ORDER BY path" },
        });
        assert.ok(!JSON.stringify(run.outputs).includes(SECRET_MARK));
    });
});

describe("the stack program under mocks: local stack (emulator, folder source)", () => {
    const savedEnv = { ...process.env };
    after(() => {
        process.env = savedEnv;
        pulumi.runtime.setAllConfig({}, []);
    });

    async function previewLocal(extra: Record<string, string> = {}): Promise<Run> {
        process.env.CLOUDFLARE_API_TOKEN = `local-token-${SECRET_MARK}`;
        // No emulator listens on the local stack's port here: the pre-flight is off (test/program/local-stack.test.ts runs it).
        return preview("local", stackConfig("local", { "sourcing-kit:preflight": "off", ...extra }), []);
    }

    it("declares the image set, its images and the redirect rows in the existing D1: no token, no database, no Worker", async () => {
        const run = await previewLocal();
        assert.deepStrictEqual(countByType(run.mocks.resources), {
            "sourcing-kit:index:MigratedImageSet": 1, [IMAGE]: 3,
            "sourcing-kit:index:RedirectLayer": 1, "pulumi-nodejs:dynamic/sourcing-kit:RedirectRows": 1,
        });
        assert.deepStrictEqual(run.mocks.invokes, [], "no permission-group lookup without a scoped token");
        const images = run.mocks.ofType(IMAGE).map((r) => r.inputs).sort((a, b) => String(a.imageId).localeCompare(String(b.imageId)));
        assert.deepStrictEqual(images.map((i) => [i.imageId, path.relative(ROOT, String(i.filePath))]), [
            ["examples/logo.png", path.join("examples", "images", "logo.png")],
            ["examples/products/blue-shoe.png", path.join("examples", "images", "products", "blue-shoe.png")],
            ["examples/products/red-shoe.png", path.join("examples", "images", "products", "red-shoe.png")],
        ]);
        for (const image of images) {
            assert.strictEqual(image.apiBaseUrl, "http://127.0.0.1:8787/client/v4");
            assert.strictEqual(image.accountId, "local-account");
            assert.strictEqual(image.apiToken, undefined, "the provider falls back to CLOUDFLARE_API_TOKEN itself");
        }
        assert.ok(run.options.every((o) => !o.retainOnDelete));
    });

    it("exports the counts, the redirect database and Worker settings, and the whole mapping onto the local delivery URLs", async () => {
        const run = await previewLocal();
        const { mapping, ...rest } = run.outputs as { mapping: Record<string, { imageId: string; deliveryUrl: string }> };
        assert.deepStrictEqual(rest, {
            sources: { "example-images": { planned: 3, skipped: { "not-an-image": 1 }, duplicates: 1 } },
            imagesPlanned: 3,
            mappedUrls: 4,
            redirectDatabase: { id: "10ca1d1a-0000-4000-8000-000000000001", query: "SELECT path, location, image_id FROM redirects ORDER BY path" },
            redirectWorker: {
                deployed: false, mainModule: "worker.js", compatibilityDate: "2025-01-01", databaseId: "10ca1d1a-0000-4000-8000-000000000001",
                vars: { FALLBACK: "origin", FLEXIBLE_VARIANTS: "false", MATCH_HOST: "false", CACHE_TTL: "300", REDIRECT_MAX_AGE: "86400", ORIGIN_URL: "http://127.0.0.1:8789" },
            },
        });
        const image = (id: string) => ({ imageId: id, deliveryUrl: `http://127.0.0.1:8787/cdn-cgi/imagedelivery/local-hash/${id}/public` });
        assert.deepStrictEqual(mapping, {
            "/logo.png": image("examples/logo.png"),
            "/products/blue-shoe.png": image("examples/products/blue-shoe.png"),
            "/products/sale/blue-shoe.png": image("examples/products/blue-shoe.png"),
            "/products/red-shoe.png": image("examples/products/red-shoe.png"),
        });
        assert.ok(!JSON.stringify(run.outputs).includes(SECRET_MARK));
    });

    it("marks every image retainOnDelete when sourcing-kit:retainOnDelete is true, and nothing else", async () => {
        const run = await previewLocal({ "sourcing-kit:retainOnDelete": "true" });
        const retained = run.options.filter((o) => o.retainOnDelete).map((o) => o.type);
        assert.deepStrictEqual(retained, [IMAGE, IMAGE, IMAGE]);
    });

    it("stops before declaring anything when the config is bad, listing every problem", async () => {
        const mocks = new RecordingMocks();
        await pulumi.runtime.setMocks(mocks, "sourcing-kit", "local", true);
        pulumi.runtime.setAllConfig(stackConfig("local", { "sourcing-kit:scopedToken": "true", "sourcing-kit:sample": "none" }), []);
        await assert.rejects(program(), (err: Error) => {
            assert.ok(pulumi.RunError.isInstance(err));
            assert.strictEqual(err.message, [
                "the stack configuration has 2 problems:",
                '  - sourcing-kit:sample: must be a whole number of at least 1 (got "none")',
                "  - sourcing-kit:scopedToken: set it to false with a custom sourcing-kit:apiBaseUrl: tokens are created on the real Cloudflare API (the emulator has none)",
                "fix them with pulumi config set (add --secret for secrets, --path for nested keys) or in Pulumi.local.yaml",
            ].join("\n"));
            return true;
        });
        await settled();
        assert.deepStrictEqual(mocks.resources, []);
    });
});
