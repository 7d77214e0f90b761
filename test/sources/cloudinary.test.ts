import * as assert from "assert";
import * as http from "http";
import { AddressInfo } from "net";
import { planImages } from "../../components/image-plan";
import { openSource, SourceImage } from "../../components/sources";

const CLOUD = "demo";
const KEY = "123456789012345";
const SECRET = "s3cr3t-abcdefghijklmnop";
const TOTAL = 1234; // three pages of 500

/** The documented resource shape of `GET /v1_1/<cloud>/resources/image/upload`. */
function resource(i: number) {
    const publicId = `shop/products/item-${String(i).padStart(4, "0")}`;
    const format = i === 7 ? "pdf" : i === 8 ? "tiff" : "jpg";
    return {
        asset_id: `asset${i}`,
        public_id: publicId,
        format,
        version: 1712345600 + i,
        resource_type: "image",
        type: "upload",
        created_at: "2024-04-05T19:33:20Z",
        bytes: i === 9 ? 0 : 1000 + i,
        width: 800,
        height: 600,
        url: `http://res.cloudinary.com/${CLOUD}/image/upload/v${1712345600 + i}/${publicId}.${format}`,
        secure_url: `https://res.cloudinary.com/${CLOUD}/image/upload/v${1712345600 + i}/${publicId}.${format}`,
        ...(i % 2 === 0 ? { etag: i === 10 || i === 12 ? "dupe-etag" : `etag-${i}` } : {}),
    };
}

describe("cloudinary source", () => {
    let server: http.Server;
    let apiBaseUrl: string;
    const requests: Array<{ path: string; query: URLSearchParams; auth?: string }> = [];
    let failNextWith: number | undefined;

    before(async () => {
        server = http.createServer((req, res) => {
            const url = new URL(req.url!, "http://x");
            requests.push({ path: url.pathname, query: url.searchParams, auth: req.headers.authorization });
            const json = (status: number, body: unknown) => {
                res.writeHead(status, { "content-type": "application/json" });
                res.end(JSON.stringify(body));
            };
            if (failNextWith) {
                const status = failNextWith;
                failNextWith = undefined;
                return json(status, { error: { message: "Try again later" } });
            }
            const expected = "Basic " + Buffer.from(`${KEY}:${SECRET}`).toString("base64");
            if (req.headers.authorization !== expected) return json(401, { error: { message: `Invalid api_key ${req.headers.authorization ? "given" : "missing"}` } });
            if (url.pathname !== `/v1_1/${CLOUD}/resources/image/upload`) return json(404, { error: { message: "Resource not found" } });
            const max = Number(url.searchParams.get("max_results") ?? 10);
            const prefix = url.searchParams.get("prefix") ?? "";
            const all = Array.from({ length: TOTAL }, (_, i) => resource(i)).filter((r) => r.public_id.startsWith(prefix));
            const start = Number(url.searchParams.get("next_cursor")?.replace("cursor-", "") ?? 0);
            const page = all.slice(start, start + max);
            json(200, { resources: page, ...(start + max < all.length ? { next_cursor: `cursor-${start + max}` } : {}) });
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        apiBaseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    beforeEach(() => (requests.length = 0));

    const source = (extra: Record<string, unknown> = {}) => ({ kind: "cloudinary", cloudName: CLOUD, apiKey: KEY, apiSecret: SECRET, apiBaseUrl, ...extra });
    async function collect(config: unknown): Promise<SourceImage[]> {
        const images: SourceImage[] = [];
        for await (const image of openSource(config, { configPath: "sourcing-kit:sources[4]" }).list()) images.push(image);
        return images;
    }

    it("lists every page by cursor with basic auth; keys are public_id.format, secure_url is fetched and redirected from", async () => {
        const images = await collect(source());
        assert.strictEqual(images.length, TOTAL);
        assert.deepStrictEqual(requests.map((r) => [r.query.get("max_results"), r.query.get("next_cursor")]), [["500", null], ["500", "cursor-500"], ["500", "cursor-1000"]]);
        const first = images[0];
        assert.deepStrictEqual(first, {
            key: "shop/products/item-0000.jpg",
            url: `https://res.cloudinary.com/${CLOUD}/image/upload/v1712345600/shop/products/item-0000.jpg`,
            size: 1000,
            contentHash: "etag-0",
            oldUrls: [
                `https://res.cloudinary.com/${CLOUD}/image/upload/v1712345600/shop/products/item-0000.jpg`,
                `https://res.cloudinary.com/${CLOUD}/image/upload/shop/products/item-0000.jpg`,
            ],
        });
        assert.strictEqual(images[1].contentHash, undefined, "no etag: the URL is the identity");
    });

    it("passes the prefix to the API, and plans skips and duplicates from the listing", async () => {
        const plan = await planImages(openSource(source({ prefix: "shop/products/item-00" }), { configPath: "x" }).list(), { configPath: "x", deliveryUrl: (id) => id });
        assert.strictEqual(requests[0].query.get("prefix"), "shop/products/item-00");
        assert.deepStrictEqual(plan.skipped, { "not-an-image": 1, "unsupported-format": 1, empty: 1 });
        assert.strictEqual(plan.duplicates, 1);
        assert.strictEqual(plan.images.length, 100 - 3 - 1);
    });

    it("retries a rate-limited page", async () => {
        failNextWith = 420;
        const images = await collect(source({ prefix: "shop/products/item-000" }));
        assert.strictEqual(images.length, 10);
        assert.strictEqual(requests.length, 2);
    });

    it("names <configPath>.apiKey and .apiSecret on HTTP 401, without echoing either", async () => {
        await assert.rejects(collect(source({ apiSecret: "wrong-secret-xyz" })), (error: Error) => {
            assert.match(error.message, /^sourcing-kit:sources\[4\]\.apiKey: Cloudinary rejected the API key and secret for cloud "demo" \(HTTP 401: Invalid api_key given\): check sourcing-kit:sources\[4\]\.apiKey and sourcing-kit:sources\[4\]\.apiSecret/);
            assert.ok(!error.message.includes("wrong-secret-xyz") && !error.message.includes(KEY));
            assert.ok(!(error.stack ?? "").includes("wrong-secret-xyz"));
            return true;
        });
    });

    it("names <configPath>.cloudName when the cloud is unknown", async () => {
        await assert.rejects(collect(source({ cloudName: "nobody" })), /^SourceError: sourcing-kit:sources\[4\]\.cloudName: Cloudinary knows no cloud "nobody" \(HTTP 404/);
    });
});
