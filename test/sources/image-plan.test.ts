import * as assert from "assert";
import { ImagePlan, MAX_IMAGE_BYTES, planImages, PlanOptions, skipReason } from "../../components/image-plan";
import { SourceImage } from "../../components/sources/types";
import { urlIdentity } from "../../components/sources/url";

const options: PlanOptions = { configPath: "sourcing-kit:sources[0]", deliveryUrl: (id) => `https://imagedelivery.net/h/${id}/public` };
const file = (key: string, extra: Partial<SourceImage> = {}): SourceImage => ({
    key,
    filePath: `/data/${key}`,
    size: 1000,
    contentHash: `sha-${key}`,
    oldUrls: [`/${key}`],
    ...extra,
});

describe("image planning", () => {
    describe("skip reasons", () => {
        const cases: Array<[string, Partial<SourceImage> & { key: string }, string | undefined]> = [
            ["a JPEG by extension", { key: "a/b.JPG" }, undefined],
            ["a PNG by content type, without extension", { key: "a/b", contentType: "image/png" }, undefined],
            ["an object without extension or content type (Cloudflare decides)", { key: "a/b" }, undefined],
            ["exactly 10 MiB", { key: "big.jpg", size: MAX_IMAGE_BYTES }, undefined],
            ["an HTML page", { key: "index.html" }, "not-an-image"],
            ["a PDF by content type despite its .jpg name", { key: "x.jpg", contentType: "application/pdf" }, "not-an-image"],
            ["a dotfile", { key: "photos/.DS_Store" }, "not-an-image"],
            ["unknown bytes without extension", { key: "README", contentType: "application/x-unknown" }, "not-an-image"],
            ["unknown bytes behind an image extension", { key: "fake.jpg", contentType: "application/x-unknown" }, "not-an-image"],
            ["a generic content type: the extension decides", { key: "real.jpg", contentType: "application/octet-stream" }, undefined],
            ["a TIFF", { key: "scan.tiff" }, "unsupported-format"],
            ["a BMP by content type", { key: "x", contentType: "image/bmp" }, "unsupported-format"],
            ["an AVIF (Enterprise only)", { key: "a.avif" }, "unsupported-format"],
            ["a Photoshop file", { key: "layout.psd" }, "unsupported-format"],
            ["a zero-byte image", { key: "empty.png", size: 0 }, "empty"],
            ["one byte over 10 MiB", { key: "big.jpg", size: MAX_IMAGE_BYTES + 1 }, "too-large"],
            ["a Glacier object", { key: "old.jpg", storageClass: "GLACIER" }, "archived"],
            ["a Deep Archive object", { key: "old.jpg", storageClass: "DEEP_ARCHIVE" }, "archived"],
            ["a Glacier Instant Retrieval object (readable at once)", { key: "old.jpg", storageClass: "GLACIER_IR" }, undefined],
            ["an S3 key with a .. segment (no URL can address it)", { key: "a/../b.jpg", url: "s3://bucket/a/../b.jpg" }, "unaddressable-key"],
            ["an S3 key with a . segment", { key: "./b.jpg", url: "https://bucket.s3.example.com/./b.jpg" }, "unaddressable-key"],
            ["dots inside a name are fine", { key: "a/..b/c..jpg", url: "s3://bucket/a/..b/c..jpg" }, undefined],
            ["a local file with a dot segment in its key (streamed, no URL)", { key: "a/../b.jpg" }, undefined],
        ];
        for (const [what, image, expected] of cases) {
            it(`${expected ?? "keeps"}: ${what}`, () => assert.strictEqual(skipReason(image), expected));
        }

        it("counts skips by reason and keeps a few keys of each for the log", async () => {
            const plan = await planImages(
                [file("a.jpg"), file("b.txt"), file("c.txt"), file("d.tiff"), file("e.png", { size: 0 }), file("f.png", { size: 11 * 1024 * 1024 })],
                options,
            );
            assert.strictEqual(plan.images.length, 1);
            assert.deepStrictEqual(plan.skipped, { "not-an-image": 2, "unsupported-format": 1, empty: 1, "too-large": 1 });
            assert.deepStrictEqual(plan.skipExamples["not-an-image"], ["b.txt", "c.txt"]);
        });
    });

    describe("duplicates", () => {
        it("merges the same content hash into one image that keeps every old URL", async () => {
            const plan = await planImages(
                [file("z/copy.jpg", { contentHash: "same" }), file("a/original.jpg", { contentHash: "same" }), file("b.jpg")],
                options,
            );
            assert.strictEqual(plan.duplicates, 1);
            assert.deepStrictEqual(plan.images.map((i) => i.imageId), ["a/original.jpg", "b.jpg"]);
            assert.deepStrictEqual(plan.images[0].oldUrls, ["/a/original.jpg", "/z/copy.jpg"]);
            assert.deepStrictEqual(plan.mapping["/z/copy.jpg"], { imageId: "a/original.jpg", deliveryUrl: "https://imagedelivery.net/h/a/original.jpg/public" });
        });

        it("merges the same normalised URL (case of host, default port, fragment) and identifies it by the URL", async () => {
            const url = (u: string): SourceImage => ({ key: "p/a.jpg", url: u, oldUrls: [u] });
            const plan = await planImages(
                [url("https://CDN.example.com:443/p/a.jpg"), url("https://cdn.example.com/p/a.jpg#top"), url("https://cdn.example.com/p/a.jpg")],
                options,
            );
            assert.strictEqual(plan.images.length, 1);
            assert.strictEqual(plan.duplicates, 2);
            assert.strictEqual(plan.images[0].sourceHash, urlIdentity("https://cdn.example.com/p/a.jpg"));
            assert.match(plan.images[0].sourceHash, /^url:[0-9a-f]{64}$/);
            assert.strictEqual(Object.keys(plan.mapping).length, 3);
        });

        it("plans the same images whatever order the source lists them in", async () => {
            const images = [file("c.jpg", { contentHash: "x" }), file("a.jpg"), file("b.jpg", { contentHash: "x" })];
            const forward = await planImages(images.map((i) => ({ ...i, oldUrls: [...i.oldUrls] })), options);
            const backward = await planImages(images.reverse().map((i) => ({ ...i, oldUrls: [...i.oldUrls] })), options);
            assert.deepStrictEqual(strip(forward), strip(backward));
        });
    });

    describe("selection", () => {
        it("applies include and exclude globs to keys, and does not count them as skipped", async () => {
            const plan = await planImages([file("products/a.jpg"), file("products/drafts/b.jpg"), file("blog/c.jpg"), file(".hidden/d.jpg")], {
                ...options,
                include: ["products/**", ".hidden/**"],
                exclude: ["**/drafts/**"],
            });
            assert.deepStrictEqual(plan.images.map((i) => i.key), [".hidden/d.jpg", "products/a.jpg"]);
            assert.strictEqual(plan.excluded, 2);
            assert.deepStrictEqual(plan.skipped, {});
        });

        it("samples the first N images in key order, the same N every run", async () => {
            const images = ["e", "b", "d", "a", "c"].map((k) => file(`${k}.jpg`));
            const plan = await planImages(images, { ...options, sample: 2 });
            assert.deepStrictEqual(plan.images.map((i) => i.key), ["a.jpg", "b.jpg"]);
            assert.strictEqual(plan.sampledOut, 3);
            assert.deepStrictEqual(Object.keys(plan.mapping), ["/a.jpg", "/b.jpg"]);
        });

        it("reports an ID collision even among images the sample leaves out", async () => {
            const images = [file("a.jpg"), file("x.jpg", { id: "same.jpg" }), file("y.jpg", { id: "same.jpg" })];
            await assert.rejects(planImages(images, { ...options, sample: 1 }), /"x\.jpg".*and "y\.jpg".*both map to image id "same\.jpg"/);
        });
    });

    describe("image inputs", () => {
        it("prefixes IDs, uses explicit IDs, and merges set metadata under per-image metadata", async () => {
            const plan = await planImages(
                [file("a.jpg", { metadata: { alt: "A", team: "web", nested: { x: 1 } } }), file("b b.jpg", { id: "explicit/b.jpg" })],
                { ...options, idPrefix: "legacy/", metadata: { team: "migration", source: "nas" } },
            );
            const [a, b] = plan.images;
            assert.strictEqual(a.imageId, "legacy/a.jpg");
            assert.deepStrictEqual(a.metadata, { team: "web", source: "nas", alt: "A", nested: '{"x":1}' });
            assert.strictEqual(b.imageId, "legacy/explicit/b.jpg");
            assert.strictEqual(a.sourceHash, "sha-a.jpg");
            assert.strictEqual(a.filePath, "/data/a.jpg");
        });
    });
});

function strip(plan: ImagePlan) {
    return { images: plan.images, mapping: plan.mapping, duplicates: plan.duplicates };
}
