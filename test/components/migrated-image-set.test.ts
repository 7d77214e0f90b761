import * as assert from "assert";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { createHash } from "crypto";
import { promises as fs } from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { MIGRATED_IMAGE_SET_TYPE, MigratedImageSet, MigratedImageSetArgs, MigratedImageSetData, summaryLine } from "../../components/migrated-image-set";
import { urlIdentity } from "../../components/sources/url";
import { checkImageInputs } from "../../provider/image-inputs";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require("s3rver");

const IMAGE_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";
const PNG = Buffer.from("89504e470d0a1a0a0000000d4948445200000001000000010806000000", "hex");

interface Registration {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}

const registrations: Registration[] = [];
const logLines: string[] = [];

const base = { accountId: "acc-test", accountHash: "hash-test" };

/** Constructs a set, waits for its plan and for every image it declared to reach the (mock) engine. */
async function expand(name: string, args: MigratedImageSetArgs) {
    const parents: Array<{ name: string; parent?: pulumi.Resource }> = [];
    const set = new MigratedImageSet(name, args, {
        transformations: [(a) => (a.type === IMAGE_TYPE && parents.push({ name: a.name, parent: a.opts.parent }), undefined)],
    });
    const data = await dataOf(set);
    for (let spins = 0; imagesOf().length < data.planned && spins < 100_000; spins++) await new Promise((r) => setImmediate(r));
    const images = imagesOf();
    assert.strictEqual(images.length, data.planned, "every planned image is registered");
    assert.strictEqual(parents.length, data.planned);
    for (const image of images) {
        const { __provider, apiToken, ...inputs } = image.inputs;
        assert.deepStrictEqual(checkImageInputs(inputs), [], `${image.name} passes the provider's check`);
    }
    assert.ok(parents.every((p) => p.parent === set), "every image is a child of the set");
    return { set, data, images, byName: new Map(images.map((i) => [i.name, i.inputs])) };
}

function dataOf(set: MigratedImageSet): Promise<MigratedImageSetData> {
    return (set as unknown as { getData(): Promise<MigratedImageSetData> }).getData();
}

/** Outputs of a failed set reject; handle all of them so only the assertion speaks. */
function quiet(set: MigratedImageSet): void {
    for (const output of [set.planned, set.skipped, set.duplicates, set.mapping] as unknown as Array<Record<string, unknown>>) {
        for (const p of [(output.promise as () => Promise<unknown>)(), output.isKnown, output.isSecret, (output.allResources as () => Promise<unknown>)()]) {
            (p as Promise<unknown>).catch(() => undefined);
        }
    }
}

/** Mocks see secrets in their wire form: `{ <sig>: <secret sig>, value }`. */
function secretValue(value: unknown): string {
    const wire = value as Record<string, unknown>;
    return wire?.[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig ? `secret:${String(wire.value)}` : `plain:${String(value)}`;
}

function imagesOf(): Registration[] {
    return registrations.filter((r) => r.type === IMAGE_TYPE);
}

function outputValue<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply((v) => resolve(v)));
}

describe("MigratedImageSet summary line", () => {
    it("reads <name>: N planned, N skipped (by reason), N duplicates, with thousands separators", () => {
        const images = new Array(1234);
        assert.strictEqual(
            summaryLine("photos", { images, skipped: { "too-large": 2, "not-an-image": 10 }, duplicates: 3 } as never),
            "photos: 1,234 planned, 12 skipped (not-an-image 10, too-large 2), 3 duplicates",
        );
        assert.strictEqual(summaryLine("empty", { images: [], skipped: {}, duplicates: 0 } as never), "empty: 0 planned, 0 skipped, 0 duplicates");
    });
});

describe("MigratedImageSet under mocks", () => {
    let tmp: string;
    let originalInfo: typeof pulumi.log.info;

    before(async () => {
        await pulumi.runtime.setMocks(
            {
                newResource(args) {
                    registrations.push({ type: args.type, name: args.name, inputs: args.inputs });
                    return { id: `${args.name}-id`, state: args.inputs };
                },
                call: () => ({}),
            },
            "sourcing-kit",
            "test",
            true,
        );
        originalInfo = pulumi.log.info;
        (pulumi.log as { info: typeof pulumi.log.info }).info = async (message: string) => {
            logLines.push(message);
        };
        tmp = await fs.mkdtemp(path.join(os.tmpdir(), "sk-set-"));
    });
    after(async () => {
        (pulumi.log as { info: typeof pulumi.log.info }).info = originalInfo;
        await fs.rm(tmp, { recursive: true, force: true });
    });
    beforeEach(() => {
        registrations.length = 0;
        logLines.length = 0;
    });

    it("batch mode: the images in CloudflareImageBatch resources of at most batchSize, each image once, stable as the set grows", async () => {
        const BATCH = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImageBatch";
        const urls = (n: number) => Array.from({ length: n }, (_, i) => `https://cdn.example.com/p/${i}.jpg`);
        const batchesOf = async (name: string, n: number) => {
            registrations.length = 0;
            const set = new MigratedImageSet(name, { ...base, source: { kind: "urls", urls: urls(n) }, mode: "batch", batchSize: 1000 });
            const data = await dataOf(set);
            await new Promise((r) => setTimeout(r, 50));
            const batches = registrations.filter((r) => r.type === BATCH);
            return { data, batches: new Map(batches.map((b) => [b.name, b.inputs.images as Record<string, { url: string; sourceHash: string }>])) };
        };
        const { data, batches } = await batchesOf("big", 2500);
        assert.strictEqual(data.planned, 2500);
        assert.strictEqual(registrations.filter((r) => r.type === IMAGE_TYPE).length, 0, "no per-image resources");
        const ids = [...batches.values()].flatMap((images) => Object.keys(images));
        assert.strictEqual(ids.length, 2500);
        assert.strictEqual(new Set(ids).size, 2500, "every image in exactly one batch");
        assert.ok([...batches.values()].every((images) => Object.keys(images).length <= 1000));
        assert.ok([...batches.keys()].every((n) => /^big-batch-b[01]+$/.test(n)), [...batches.keys()].join(" "));
        assert.deepStrictEqual(Object.values(batches.values().next().value!)[0]!.url.startsWith("https://cdn.example.com/p/"), true);
        assert.ok(logLines.includes(`big: 2,500 images in ${batches.size} batches of at most 1,000`), logLines.join("\n"));
        // One more image: exactly one batch's inputs change, the others are identical.
        const grown = await batchesOf("big", 2501);
        const changed = [...grown.batches].filter(([name, images]) => JSON.stringify(images) !== JSON.stringify(batches.get(name)));
        assert.strictEqual(changed.length, 1);
        assert.deepStrictEqual([...grown.batches.keys()], [...batches.keys()]);
    });

    it("warns a batch set past 50,000 images to set GOMEMLIMIT for the CLI, and says nothing once it is set", async () => {
        const originalWarn = pulumi.log.warn;
        const warnings: string[] = [];
        (pulumi.log as { warn: typeof pulumi.log.warn }).warn = async (message: string) => void warnings.push(message);
        const saved = process.env.GOMEMLIMIT;
        try {
            const source = { kind: "urls" as const, urls: Array.from({ length: 50_000 }, (_, i) => `https://cdn.example.com/q/${i}.jpg`) };
            delete process.env.GOMEMLIMIT;
            await dataOf(new MigratedImageSet("huge", { ...base, source, mode: "batch" }));
            assert.strictEqual(warnings.length, 1, warnings.join("\n"));
            assert.match(warnings[0]!, /^huge: 50,000 images in one stack; .*GOMEMLIMIT=512MiB pulumi up/);
            process.env.GOMEMLIMIT = "512MiB";
            await dataOf(new MigratedImageSet("huge2", { ...base, source, mode: "batch" }));
            assert.strictEqual(warnings.length, 1, warnings.join("\n"));
        } finally {
            if (saved === undefined) delete process.env.GOMEMLIMIT;
            else process.env.GOMEMLIMIT = saved;
            (pulumi.log as { warn: typeof pulumi.log.warn }).warn = originalWarn;
        }
    });

    it("expands a URL list: one image per unique URL, named img-<id>, with url, URL identity and set options", async () => {
        const token = pulumi.secret("tok-123");
        const { data, images, byName } = await expand("catalog", {
            ...base,
            apiToken: token,
            apiBaseUrl: "http://127.0.0.1:9/client/v4",
            onConflict: "overwrite",
            metadata: { migratedBy: "sourcing-kit" },
            source: { kind: "urls", urls: ["https://cdn.example.com/p/a.jpg", "https://cdn.example.com/p/b%20c.png", "https://CDN.example.com/p/a.jpg", "https://cdn.example.com/index.html"] },
            configPath: "sourcing-kit:sources[0]",
        });
        assert.strictEqual(images.length, 2);
        const a = byName.get("img-p/a.jpg")!;
        assert.deepStrictEqual(
            { ...a, __provider: typeof a.__provider, apiToken: secretValue(a.apiToken) },
            {
                accountId: "acc-test",
                imageId: "p/a.jpg",
                url: "https://cdn.example.com/p/a.jpg",
                sourceHash: urlIdentity("https://cdn.example.com/p/a.jpg"),
                metadata: { migratedBy: "sourcing-kit" },
                apiToken: "secret:tok-123",
                apiBaseUrl: "http://127.0.0.1:9/client/v4",
                onConflict: "overwrite",
                owner: "test/img-p/a.jpg",
                __provider: "string",
            },
        );
        assert.match(images.map((i) => i.name).sort()[1], /^img-p\/b-c-[0-9a-f]{8}\.png$/);
        assert.deepStrictEqual({ planned: data.planned, skipped: data.skipped, duplicates: data.duplicates }, { planned: 2, skipped: { "not-an-image": 1 }, duplicates: 1 });
        assert.deepStrictEqual(data.mapping["https://cdn.example.com/p/a.jpg"], { imageId: "p/a.jpg", deliveryUrl: "https://imagedelivery.net/hash-test/p/a.jpg/public" });
        assert.deepStrictEqual(logLines[0], "catalog: 2 planned, 1 skipped (not-an-image 1), 1 duplicates");
    });

    it("exposes counts and mapping as outputs known at plan time, and registers no source secrets on the component", async () => {
        const { set } = await expand("outputs", { ...base, source: { kind: "urls", urls: ["https://cdn.example.com/a.jpg"] } });
        assert.strictEqual(await outputValue(set.planned), 1);
        assert.deepStrictEqual(await outputValue(set.skipped), {});
        assert.strictEqual(await outputValue(set.duplicates), 0);
        assert.deepStrictEqual(Object.keys(await outputValue(set.mapping)), ["https://cdn.example.com/a.jpg"]);
        const component = registrations.find((r) => r.type === MIGRATED_IMAGE_SET_TYPE && r.name === "outputs")!;
        assert.deepStrictEqual(component.inputs, { sourceKind: "urls" });
    });

    it("uses manifest ids, hashes and metadata, under the idPrefix", async () => {
        const file = path.join(tmp, "m.ndjson");
        await fs.writeFile(file, '{"url":"https://cdn.example.com/a.jpg","id":"products/a.jpg","hash":"h-a","metadata":{"sku":"A1"}}\n');
        const { byName } = await expand("manifest", { ...base, idPrefix: "legacy", source: { kind: "manifest", path: file } });
        const inputs = byName.get("img-legacy/products/a.jpg")!;
        assert.deepStrictEqual([inputs.imageId, inputs.sourceHash, inputs.metadata], ["legacy/products/a.jpg", "h-a", { sku: "A1" }]);
    });

    it("expands a local folder into filePath images identified by sha256, skipping empty and non-image files", async () => {
        const dir = path.join(tmp, "local");
        await fs.mkdir(path.join(dir, "icons"), { recursive: true });
        await fs.writeFile(path.join(dir, "icons", "logo.png"), PNG);
        await fs.writeFile(path.join(dir, "icons", "empty.png"), "");
        await fs.writeFile(path.join(dir, "notes.md"), "# notes");
        const { data, byName } = await expand("local", { ...base, source: { kind: "local", dir } });
        assert.deepStrictEqual(byName.get("img-icons/logo.png"), {
            accountId: "acc-test",
            imageId: "icons/logo.png",
            filePath: path.join(dir, "icons", "logo.png"),
            sourceHash: createHash("sha256").update(PNG).digest("hex"),
            owner: "test/img-icons/logo.png",
            __provider: byName.get("img-icons/logo.png")!.__provider,
        });
        assert.deepStrictEqual(data.skipped, { empty: 1, "not-an-image": 1 });
        assert.deepStrictEqual(Object.keys(data.mapping), ["/icons/logo.png"]);
    });

    it("expands an imgix domain into imgix URLs", async () => {
        const { byName } = await expand("imgix", { ...base, source: { kind: "imgix", domain: "acme.imgix.net", paths: ["/a/b.jpg"] } });
        assert.strictEqual(byName.get("img-a/b.jpg")!.url, "https://acme.imgix.net/a/b.jpg");
    });

    it("logs skip examples, glob exclusions and the sample, and plans only the sample", async () => {
        const urls = Array.from({ length: 10 }, (_, i) => `https://cdn.example.com/p/${i}.jpg`).concat("https://cdn.example.com/p/x.tiff", "https://cdn.example.com/drafts/d.jpg");
        const { data } = await expand("sampled", { ...base, sample: 3, exclude: ["drafts/**"], source: { kind: "urls", urls } });
        assert.strictEqual(data.planned, 3);
        assert.deepStrictEqual(logLines, [
            "sampled: 3 planned, 1 skipped (unsupported-format 1), 0 duplicates",
            "sampled: skipped, for example unsupported-format: p/x.tiff",
            "sampled: 1 left out by include/exclude",
            "sampled: sample 3: 7 more images not planned",
        ]);
    });

    it("declares about 200 images with unique names and one shared provider text", async () => {
        const urls = Array.from({ length: 200 }, (_, i) => `https://cdn.example.com/lib/${i % 7}/photo ${i}.jpg`);
        const { images } = await expand("many", { ...base, source: { kind: "urls", urls } });
        assert.strictEqual(new Set(images.map((i) => i.name)).size, 200);
        assert.strictEqual(new Set(images.map((i) => i.inputs.__provider)).size, 1);
    });

    describe("bad configuration fails before any image is declared, naming the config path", () => {
        const cases: Array<[string, Partial<MigratedImageSetArgs>, RegExp]> = [
            ["a missing bucket", { source: { kind: "s3" } as never }, /^sourcing-kit:sources\[1\]\.bucket: bucket is required/],
            ["a typo in a source key", { source: { kind: "local", dir: ".", dri: "x" } as never }, /^sourcing-kit:sources\[1\]\.dri: unknown key/],
            ["an unreadable folder", { source: { kind: "local", dir: "/nonexistent/sk-folder" } }, /^sourcing-kit:sources\[1\]\.dir: cannot read folder "\/nonexistent\/sk-folder" \(ENOENT\)/],
            ["a bad idPrefix", { idPrefix: "my prefix", source: { kind: "urls", urls: ["https://x.example/a.jpg"] } }, /^sourcing-kit:sources\[1\]\.idPrefix: "my prefix" must be/],
            ["signed URLs, which custom IDs cannot have", { requireSignedURLs: true, source: { kind: "urls", urls: ["https://x.example/a.jpg"] } }, /^sourcing-kit:sources\[1\]\.requireSignedURLs: Cloudflare does not allow signed URLs/],
            ["two URLs mapping to one custom ID", { source: { kind: "urls", urls: ["https://a.example/p/a.jpg", "https://b.example/p/a.jpg"] } }, /both map to image id "p\/a\.jpg"/],
        ];
        for (const [what, args, expected] of cases) {
            it(what, async () => {
                const set = new MigratedImageSet("bad", { ...base, configPath: "sourcing-kit:sources[1]", ...args } as MigratedImageSetArgs);
                quiet(set);
                await assert.rejects(dataOf(set), (error: Error) => {
                    assert.ok(error instanceof pulumi.RunError, "shown without a stack trace");
                    assert.match(error.message, expected);
                    return true;
                });
                assert.strictEqual(imagesOf().length, 0);
            });
        }
    });

    describe("with S3 and Cloudinary servers", () => {
        let s3rver: { run(): Promise<AddressInfo>; close(): Promise<void> };
        let endpoint: string;
        let cloudinary: http.Server;
        let cloudinaryUrl: string;
        let savedConfig: Record<string, string>;

        before(async () => {
            s3rver = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: path.join(tmp, "s3"), configureBuckets: [{ name: "bucket" }] });
            endpoint = `http://127.0.0.1:${(await s3rver.run()).port}`;
            const client = new S3Client({ region: "us-east-1", endpoint, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
            for (const [Key, Body] of [["media/a b.jpg", "aaa"], ["media/sub/c.png", "ccc"], ["media/readme.txt", "text"]]) {
                await client.send(new PutObjectCommand({ Bucket: "bucket", Key, Body: Buffer.from(Body) }));
            }
            client.destroy();
            savedConfig = pulumi.runtime.allConfig();
            pulumi.runtime.setConfig("aws:accessKey", "S3RVER");
            pulumi.runtime.setConfig("aws:secretKey", "S3RVER");
            cloudinary = http.createServer((req, res) => {
                res.writeHead(200, { "content-type": "application/json" });
                const url = `https://res.cloudinary.com/demo/image/upload/v17/shop/shoe.jpg`;
                res.end(JSON.stringify({ resources: [{ public_id: "shop/shoe", format: "jpg", bytes: 10, type: "upload", version: 17, secure_url: url, etag: "e1" }] }));
            });
            await new Promise<void>((resolve) => cloudinary.listen(0, "127.0.0.1", resolve));
            cloudinaryUrl = `http://127.0.0.1:${(cloudinary.address() as AddressInfo).port}`;
        });
        after(async () => {
            pulumi.runtime.setAllConfig(savedConfig);
            await s3rver?.close();
            await new Promise<void>((resolve) => cloudinary.close(() => resolve()));
        });

        it("passes private S3 objects as s3:// URLs with the endpoint, region and path style the provider presigns with", async () => {
            const { byName, data } = await expand("bucket", {
                ...base,
                source: { kind: "s3", bucket: "bucket", prefix: "media/", endpoint, forcePathStyle: true, region: "us-east-1" },
            });
            const aName = [...byName.keys()].find((n) => /^img-media\/a-b-[0-9a-f]{8}\.jpg$/.test(n))!;
            const a = byName.get(aName)!;
            assert.strictEqual(a.url, "s3://bucket/media/a%20b.jpg");
            assert.deepStrictEqual(a.s3, { region: "us-east-1", endpoint, forcePathStyle: true });
            assert.match(a.sourceHash as string, /^[0-9a-f]{32}$/);
            assert.deepStrictEqual(data.skipped, { "not-an-image": 1 });
            assert.deepStrictEqual(Object.keys(data.mapping).sort(), ["/media/a b.jpg", "/media/sub/c.png"]);
        });

        it("passes public S3 objects as plain URLs, without s3 options", async () => {
            const { byName } = await expand("public-bucket", { ...base, source: { kind: "s3", bucket: "bucket", prefix: "media/sub/", endpoint, forcePathStyle: true, access: "public" } });
            const c = byName.get("img-media/sub/c.png")!;
            assert.strictEqual(c.url, `${endpoint}/bucket/media/sub/c.png`);
            assert.strictEqual(c.s3, undefined);
        });

        it("fails naming <configPath>.bucket when the bucket does not exist, with no image declared", async () => {
            const set = new MigratedImageSet("nobucket", { ...base, configPath: "sourcing-kit:sources[1]", source: { kind: "s3", bucket: "missing-bucket", endpoint, forcePathStyle: true } });
            quiet(set);
            await assert.rejects(dataOf(set), /^Error: sourcing-kit:sources\[1\]\.bucket: bucket "missing-bucket" does not exist/);
            assert.strictEqual(imagesOf().length, 0);
        });

        it("expands Cloudinary assets into their secure URLs, redirecting the versioned and version-less URLs", async () => {
            const { byName, data } = await expand("cloudinary", { ...base, source: { kind: "cloudinary", cloudName: "demo", apiKey: "k", apiSecret: "never-in-state", apiBaseUrl: cloudinaryUrl } });
            const shoe = byName.get("img-shop/shoe.jpg")!;
            assert.deepStrictEqual([shoe.url, shoe.sourceHash], ["https://res.cloudinary.com/demo/image/upload/v17/shop/shoe.jpg", "e1"]);
            assert.deepStrictEqual(Object.keys(data.mapping), ["https://res.cloudinary.com/demo/image/upload/v17/shop/shoe.jpg", "https://res.cloudinary.com/demo/image/upload/shop/shoe.jpg"]);
            assert.ok(!JSON.stringify(registrations).includes("never-in-state"));
        });
    });
});
