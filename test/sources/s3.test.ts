import * as assert from "assert";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { promises as fs } from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { planImages } from "../../components/image-plan";
import { openSource, SourceImage } from "../../components/sources";
import { AwsSettings } from "../../components/sources/s3";
import { encodeKeyPath } from "../../components/sources/url";
import { parseS3Url } from "../../provider/s3-presign";
import fc from "fast-check";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require("s3rver");

const BULK = 1100; // more than one ListObjectsV2 page of 1,000
const aws: AwsSettings = { accessKey: "S3RVER", secretKey: "S3RVER", region: "us-east-1" };
const CONFIG = "sourcing-kit:sources[1]";

async function collect(source: unknown, settings: AwsSettings = aws): Promise<SourceImage[]> {
    const images: SourceImage[] = [];
    for await (const image of openSource(source, { configPath: CONFIG, aws: settings }).list()) images.push(image);
    return images;
}

describe("s3 source", () => {
    let server: { close(): Promise<void> };
    let endpoint: string;
    let dir: string;
    const base = () => ({ kind: "s3", bucket: "bucket", endpoint, forcePathStyle: true });

    before(async () => {
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "sk-s3rver-"));
        server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: dir, configureBuckets: [{ name: "bucket" }] });
        const address = (await (server as unknown as { run(): Promise<AddressInfo> }).run()) as AddressInfo;
        endpoint = `http://127.0.0.1:${address.port}`;
        const client = new S3Client({ region: "us-east-1", endpoint, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
        const objects: Array<[string, Buffer | string]> = [
            ["photos/2023/summer/beach.jpg", "jpeg bytes 1"],
            ["photos/2023/summer/beach copy.jpg", "jpeg bytes 1"],
            ["photos/2024/logo.png", "png bytes"],
            ["photos/2024/notes.txt", "not an image"],
            ["photos/empty.jpg", ""],
            ["photos/folder/", ""],
            ["other/outside.jpg", "outside the prefix"],
            ...Array.from({ length: BULK }, (_, i) => [`photos/bulk/img-${String(i).padStart(4, "0")}.jpg`, `bulk ${i}`] as [string, string]),
        ];
        let next = 0;
        const worker = async () => {
            while (next < objects.length) {
                const [Key, Body] = objects[next++];
                await client.send(new PutObjectCommand({ Bucket: "bucket", Key, Body: Buffer.from(Body) }));
            }
        };
        await Promise.all(Array.from({ length: 16 }, worker));
        client.destroy();
    });
    after(async () => {
        await server?.close();
        await fs.rm(dir, { recursive: true, force: true });
    });

    it("lists every page under the prefix: keys, ETags, sizes; private objects as s3:// with the key as old path", async () => {
        const images = await collect({ ...base(), prefix: "photos/" });
        assert.strictEqual(images.length, BULK + 5, "all pages, the folder marker left out, nothing outside the prefix");
        const beach = images.find((i) => i.key === "photos/2023/summer/beach copy.jpg")!;
        assert.deepStrictEqual(
            { ...beach, contentHash: typeof beach.contentHash },
            { key: "photos/2023/summer/beach copy.jpg", url: "s3://bucket/photos/2023/summer/beach%20copy.jpg", size: 12, contentHash: "string", storageClass: "STANDARD", oldUrls: ["/photos/2023/summer/beach copy.jpg"] },
        );
        assert.match(beach.contentHash!, /^[0-9a-f]{32}$/);
        assert.strictEqual(images.find((i) => i.key === "photos/empty.jpg")!.size, 0);
    });

    it("plans the bucket: duplicates by ETag, the zero-byte object and the non-image skipped with reasons", async () => {
        const plan = await planImages(openSource({ ...base(), prefix: "photos/" }, { configPath: CONFIG, aws }).list(), { configPath: CONFIG, deliveryUrl: (id) => id });
        assert.strictEqual(plan.images.length, BULK + 2);
        assert.deepStrictEqual(plan.skipped, { "not-an-image": 1, empty: 1 });
        assert.strictEqual(plan.duplicates, 1);
        assert.deepStrictEqual(plan.mapping["/photos/2023/summer/beach.jpg"], plan.mapping["/photos/2023/summer/beach copy.jpg"]);
    });

    it("gives public objects plain URLs that really serve the bytes (path-style on a custom endpoint, or publicBaseUrl)", async () => {
        const [logo] = (await collect({ ...base(), prefix: "photos/2024/logo", access: "public" }));
        assert.strictEqual(logo.url, `${endpoint}/bucket/photos/2024/logo.png`);
        assert.deepStrictEqual(logo.oldUrls, [logo.url]);
        const body = await new Promise<string>((resolve, reject) =>
            http.get(logo.url!, (res) => {
                let text = "";
                res.on("data", (c) => (text += c)).on("end", () => resolve(text));
            }).on("error", reject),
        );
        assert.strictEqual(body, "png bytes");
        const [viaCdn] = await collect({ ...base(), prefix: "photos/2023/summer/beach copy", publicBaseUrl: "https://media.example.com/" });
        assert.strictEqual(viaCdn.url, "https://media.example.com/photos/2023/summer/beach%20copy.jpg");
    });

    it("writes s3:// URLs whose key the provider decodes back exactly (spaces, %, #, ?, +, unicode)", () => {
        const segment = fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }).filter((s) => !s.includes("/") && s !== "." && s !== "..");
        fc.assert(
            fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), (segments) => {
                const key = segments.join("/");
                assert.deepStrictEqual(parseS3Url(`s3://bucket/${encodeKeyPath(key)}`), { bucket: "bucket", key });
            }),
            { numRuns: 300 },
        );
    });

    it("names <configPath>.bucket when the bucket does not exist", async () => {
        await assert.rejects(collect({ ...base(), bucket: "no-such-bucket" }), (error: Error) => {
            assert.match(error.message, /^sourcing-kit:sources\[1\]\.bucket: bucket "no-such-bucket" does not exist at http:\/\/127\.0\.0\.1:\d+/);
            return true;
        });
    });

    it("says which credentials to fix when the access key is rejected, without echoing them", async () => {
        const wrong = { ...aws, accessKey: "AKIAWRONGKEY", secretKey: "wrong-secret-value" };
        await assert.rejects(collect(base(), wrong), (error: Error) => {
            assert.match(error.message, /^sourcing-kit:sources\[1\]: the AWS credentials were rejected while listing bucket "bucket" \(InvalidAccessKeyId\): set aws:accessKey and aws:secretKey/);
            assert.ok(!error.message.includes("AKIAWRONGKEY") && !error.message.includes("wrong-secret-value"));
            return true;
        });
    });

    describe("against an S3-compatible endpoint answering what s3rver cannot", () => {
        let fake: http.Server;
        let fakeEndpoint: string;
        let reply: (res: http.ServerResponse) => void;
        before(async () => {
            fake = http.createServer((req, res) => reply(res));
            await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
            fakeEndpoint = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
        });
        after(() => new Promise<void>((resolve) => fake.close(() => resolve())));
        const xml = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;

        it("passes storage classes on, so Glacier and Deep Archive objects are skipped as archived", async () => {
            const entry = (key: string, cls: string) => `<Contents><Key>${key}</Key><ETag>"e-${key}"</ETag><Size>10</Size><StorageClass>${cls}</StorageClass></Contents>`;
            reply = (res) => {
                res.writeHead(200, { "content-type": "application/xml" });
                res.end(xml(`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><IsTruncated>false</IsTruncated>${entry("a.jpg", "GLACIER")}${entry("b.jpg", "DEEP_ARCHIVE")}${entry("c.jpg", "GLACIER_IR")}</ListBucketResult>`));
            };
            const source = { kind: "s3", bucket: "bucket", endpoint: fakeEndpoint, forcePathStyle: true };
            const images = await collect(source);
            assert.deepStrictEqual(images.map((i) => [i.key, i.storageClass, i.contentHash]), [["a.jpg", "GLACIER", "e-a.jpg"], ["b.jpg", "DEEP_ARCHIVE", "e-b.jpg"], ["c.jpg", "GLACIER_IR", "e-c.jpg"]]);
            const plan = await planImages(images, { configPath: CONFIG, deliveryUrl: (id) => id });
            assert.deepStrictEqual(plan.skipped, { archived: 2 });
            assert.deepStrictEqual(plan.images.map((i) => i.key), ["c.jpg"]);
        });

        it("names <configPath>.region and the bucket's real region on a PermanentRedirect", async () => {
            reply = (res) => {
                res.writeHead(301, { "content-type": "application/xml", "x-amz-bucket-region": "eu-west-1" });
                res.end(xml(`<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message><Endpoint>bucket.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>bucket</Bucket></Error>`));
            };
            await assert.rejects(collect({ kind: "s3", bucket: "bucket", endpoint: fakeEndpoint, forcePathStyle: true, region: "us-east-1" }), /^SourceError: sourcing-kit:sources\[1\]\.region: bucket "bucket" is in region eu-west-1, not us-east-1: set sourcing-kit:sources\[1\]\.region to "eu-west-1"/);
        });

        it("names <configPath>.region on AuthorizationHeaderMalformed (signed for the wrong region)", async () => {
            reply = (res) => {
                res.writeHead(400, { "content-type": "application/xml" });
                res.end(xml(`<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; expecting 'ap-southeast-2'</Message><Region>ap-southeast-2</Region></Error>`));
            };
            await assert.rejects(collect({ kind: "s3", bucket: "bucket", endpoint: fakeEndpoint, forcePathStyle: true }), /sourcing-kit:sources\[1\]\.region: bucket "bucket" is in region ap-southeast-2, not us-east-1/);
        });
    });
});
