import * as assert from "assert";
import { createHash } from "crypto";
import { promises as fs } from "fs";
import * as os from "os";
import * as path from "path";
import { openSource, SourceError, SourceImage } from "../../components/sources";

const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f5c1d40000000049454e44ae426082", "hex");
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 7)]);

async function collect(source: unknown, configPath = "sourcing-kit:sources[0]"): Promise<SourceImage[]> {
    const images: SourceImage[] = [];
    for await (const image of openSource(source, { configPath }).list()) images.push(image);
    return images;
}

describe("file and URL sources", () => {
    let tmp: string;
    before(async () => {
        tmp = await fs.mkdtemp(path.join(os.tmpdir(), "sk-sources-"));
    });
    after(async () => {
        await fs.chmod(path.join(tmp, "locked"), 0o755).catch(() => undefined);
        await fs.rm(tmp, { recursive: true, force: true });
    });

    describe("urls", () => {
        it("keys each URL by its path, fetches and redirects from the normalised URL", async () => {
            const [a, b] = await collect({ kind: "urls", urls: ["https://CDN.example.com/p/a%20b.jpg#x", "https://cdn.example.com/q.png?v=2"] });
            assert.deepStrictEqual(a, { key: "p/a b.jpg", url: "https://cdn.example.com/p/a%20b.jpg", oldUrls: ["https://cdn.example.com/p/a%20b.jpg"] });
            assert.strictEqual(b.key, "q.png?v=2");
        });
    });

    describe("manifest", () => {
        it("reads a CSV manifest (header url,id,hash,metadata) with quoted JSON metadata", async () => {
            const file = path.join(tmp, "images.csv");
            await fs.writeFile(
                file,
                "\uFEFFurl,id,hash,metadata\n" +
                    'https://cdn.example.com/a.jpg,,abc123,"{""alt"":""A, quoted"",""w"":3}"\n' +
                    "\n" +
                    "https://cdn.example.com/b.jpg,products/b.jpg,,\n",
            );
            const [a, b] = await collect({ kind: "manifest", path: file });
            assert.deepStrictEqual(a, { key: "a.jpg", url: "https://cdn.example.com/a.jpg", oldUrls: ["https://cdn.example.com/a.jpg"], contentHash: "abc123", metadata: { alt: "A, quoted", w: 3 } });
            assert.deepStrictEqual(b, { key: "b.jpg", url: "https://cdn.example.com/b.jpg", oldUrls: ["https://cdn.example.com/b.jpg"], id: "products/b.jpg" });
        });

        it("reads an NDJSON manifest, one object a line", async () => {
            const file = path.join(tmp, "images.ndjson");
            await fs.writeFile(file, '{"url":"https://cdn.example.com/a.jpg","hash":"h1"}\n\n{"url":"https://cdn.example.com/b.gif","metadata":{"k":true}}\n');
            const images = await collect({ kind: "manifest", path: file });
            assert.deepStrictEqual(images.map((i) => [i.key, i.contentHash, i.metadata]), [["a.jpg", "h1", undefined], ["b.gif", undefined, { k: true }]]);
        });

        const bad: Array<[string, string, string, RegExp]> = [
            ["a CSV row that is not a URL", "bad-url.csv", "url\nhttps://ok.example/a.jpg\nnot a url\n", /line 3: url must be an absolute http\(s\) URL/],
            ["a CSV row with broken JSON metadata", "bad-meta.csv", "url,metadata\nhttps://ok.example/a.jpg,{oops\n", /line 2: not valid JSON/],
            ["a CSV with an unknown column", "bad-col.csv", "url,hsah\nhttps://ok.example/a.jpg,x\n", /line 1: unknown column "hsah"/],
            ["a CSV row with too many fields", "bad-fields.csv", "url,id\nhttps://ok.example/a.jpg,a.jpg\nhttps://ok.example/b.jpg,b.jpg,extra\n", /line 3: /],
            ["an NDJSON line that is not JSON", "bad.ndjson", '{"url":"https://ok.example/a.jpg"}\n{"url":\n', /line 2: not valid JSON/],
            ["an NDJSON line with a UUID id", "bad-id.ndjson", '{"url":"https://ok.example/a.jpg","id":"0b8a4f2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"}\n', /line 1: id is not a valid custom ID/],
            ["a URL with credentials", "creds.csv", "url\nhttps://user:pw@ok.example/a.jpg\n", /line 2: url must not carry user:password/],
            ["an NDJSON line with nested metadata", "nested.ndjson", '{"url":"https://ok.example/a.jpg","metadata":{"a":{"b":1}}}\n', /line 1: metadata\.a: must be a string, number or boolean/],
            ["an NDJSON line without url", "no-url.ndjson", '{"url":"https://ok.example/a.jpg"}\n{"id":"x.jpg"}\n', /line 2: url is required/],
        ];
        for (const [what, name, content, expected] of bad) {
            it(`fails on ${what}, naming the config key, the file and the line`, async () => {
                const file = path.join(tmp, name);
                await fs.writeFile(file, content);
                await assert.rejects(collect({ kind: "manifest", path: file }, "sourcing-kit:sources[2]"), (error: Error) => {
                    assert.ok(error instanceof SourceError);
                    assert.ok(error.message.startsWith(`sourcing-kit:sources[2].path: ${file}: `), error.message);
                    assert.match(error.message, expected);
                    return true;
                });
            });
        }

        it("fails on a missing manifest file, naming the config key", async () => {
            await assert.rejects(collect({ kind: "manifest", path: path.join(tmp, "nope.csv") }), /^SourceError: sourcing-kit:sources\[0\]\.path: .*nope\.csv: cannot read the manifest \(ENOENT\)/);
        });
    });

    describe("imgix", () => {
        it("rewrites paths and manifest rows to URLs on the imgix domain", async () => {
            const file = path.join(tmp, "imgix.csv");
            await fs.writeFile(file, "path,hash\n/products/c.jpg,h3\n");
            const images = await collect({ kind: "imgix", domain: "acme.imgix.net", paths: ["products/a.jpg", "/blog/b b.png"], manifest: file });
            assert.deepStrictEqual(images.map((i) => [i.key, i.url, i.oldUrls, i.contentHash]), [
                ["products/a.jpg", "https://acme.imgix.net/products/a.jpg", ["https://acme.imgix.net/products/a.jpg"], undefined],
                ["blog/b b.png", "https://acme.imgix.net/blog/b%20b.png", ["https://acme.imgix.net/blog/b%20b.png"], undefined],
                ["products/c.jpg", "https://acme.imgix.net/products/c.jpg", ["https://acme.imgix.net/products/c.jpg"], "h3"],
            ]);
        });
    });

    describe("local", () => {
        let dir: string;
        before(async () => {
            dir = path.join(tmp, "library");
            await fs.mkdir(path.join(dir, "a", "b", "c"), { recursive: true });
            await fs.writeFile(path.join(dir, "top.png"), PNG);
            await fs.writeFile(path.join(dir, "a", "photo.jpg"), JPEG);
            await fs.writeFile(path.join(dir, "a", "b", "c", "deep.JPG"), JPEG);
            await fs.writeFile(path.join(dir, "a", "notes.txt"), "hello");
            await fs.writeFile(path.join(dir, "a", "b", "empty.png"), "");
            await fs.writeFile(path.join(dir, "a", "b", "README"), "plain text");
            await fs.writeFile(path.join(dir, "a", "b", "disguised.jpg"), "<html>not really</html>");
            await fs.writeFile(path.join(dir, "a", "b", "no-extension"), PNG);
            await fs.writeFile(path.join(dir, "a", "b", "icon.svg"), `<?xml version="1.0"?>\n<!-- ${"x".repeat(5000)} -->\n<svg xmlns="http://www.w3.org/2000/svg"/>`);
        });

        it("walks recursively: relative keys, leading-slash old URLs, sizes, streamed sha256, sniffed content types", async () => {
            const images = (await collect({ kind: "local", dir })).sort((x, y) => (x.key < y.key ? -1 : 1));
            assert.deepStrictEqual(images.map((i) => i.key), ["a/b/README", "a/b/c/deep.JPG", "a/b/disguised.jpg", "a/b/empty.png", "a/b/icon.svg", "a/b/no-extension", "a/notes.txt", "a/photo.jpg", "top.png"]);
            const svg = images.find((i) => i.key === "a/b/icon.svg")!;
            assert.deepStrictEqual([svg.contentType, typeof svg.contentHash], [undefined, "string"], "an SVG with a long prolog passes by its extension");
            const top = images.find((i) => i.key === "top.png")!;
            assert.deepStrictEqual(top, {
                key: "top.png",
                filePath: path.join(dir, "top.png"),
                size: PNG.length,
                contentType: "image/png",
                oldUrls: ["/top.png"],
                contentHash: createHash("sha256").update(PNG).digest("hex"),
            });
            assert.strictEqual(images.find((i) => i.key === "a/b/no-extension")!.contentType, "image/png");
            // Files that will be skipped are not hashed; a name is not enough to pass for an image.
            assert.strictEqual(images.find((i) => i.key === "a/notes.txt")!.contentHash, undefined);
            assert.deepStrictEqual(images.find((i) => i.key === "a/b/disguised.jpg")!.contentType, "application/x-unknown");
            assert.strictEqual(images.find((i) => i.key === "a/b/disguised.jpg")!.contentHash, undefined);
            assert.strictEqual(images.find((i) => i.key === "a/b/empty.png")!.size, 0);
        });

        it("fails on a missing folder, naming <configPath>.dir", async () => {
            await assert.rejects(collect({ kind: "local", dir: path.join(tmp, "missing") }, "sourcing-kit:sources[3]"), /^SourceError: sourcing-kit:sources\[3\]\.dir: cannot read folder ".*missing" \(ENOENT\)/);
        });

        it("fails on a dir that is a file, naming <configPath>.dir", async () => {
            await assert.rejects(collect({ kind: "local", dir: path.join(dir, "top.png") }), /^SourceError: sourcing-kit:sources\[0\]\.dir: cannot read folder ".*top\.png" \(ENOTDIR\)/);
        });

        it("fails on an unreadable folder, naming <configPath>.dir", async function () {
            if (process.getuid?.() === 0) this.skip(); // root reads everything
            const locked = path.join(tmp, "locked");
            await fs.mkdir(locked, { recursive: true });
            await fs.chmod(locked, 0o000);
            await assert.rejects(collect({ kind: "local", dir: locked }), /sourcing-kit:sources\[0\]\.dir: cannot read folder .* \(EACCES\)/);
        });
    });
});
