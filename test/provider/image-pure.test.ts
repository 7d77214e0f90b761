import { strict as assert } from "assert";
import { checkImageInputs, parseImageInputs, UNKNOWN } from "../../provider/image-inputs";
import { diffImage, needsPatch } from "../../provider/image-diff";
import { deliveryUrlFor, imageOutputs, pickDeliveryUrl } from "../../provider/image-outputs";
import { badImageInputs } from "./bad-inputs";
import { METADATA_MAX_BYTES, SOURCE_HASH_KEY, metadataBytes, packMetadata, unpackMetadata } from "../../provider/source-metadata";

const good = {
    accountId: "acc-test",
    imageId: "products/shoe-1.jpg",
    url: "https://origin.example.com/shoe-1.jpg",
    sourceHash: "etag-1",
};

describe("CloudflareImage inputs (check, no I/O)", () => {
    it("accepts a url image, a file image, an s3 image and unknown (preview) values", () => {
        assert.deepEqual(checkImageInputs(good), []);
        assert.deepEqual(checkImageInputs({ ...good, url: undefined, filePath: "./img/a.png", metadata: { alt: "x", n: 1, b: true } }), []);
        assert.deepEqual(checkImageInputs({ ...good, url: "s3://my-bucket/a/b.jpg", s3: { region: "eu-west-1", forcePathStyle: true } }), []);
        assert.deepEqual(checkImageInputs({ ...good, apiToken: UNKNOWN, url: UNKNOWN, __provider: "exports.handler = …" }), []);
    });

    for (const [name, input, property, reason] of badImageInputs(good)) {
        it(`rejects ${name} with a failure on ${property}`, () => {
            const failures = checkImageInputs(input);
            const hit = failures.find((f) => f.property === property);
            assert.ok(hit, `no failure on ${property}: ${JSON.stringify(failures)}`);
            assert.match(hit!.reason, reason);
        });
    }

    it("never echoes credentials from a url in a failure", () => {
        const failures = checkImageInputs({ ...good, url: "s3://key:hunter2@Bad_Bucket/" });
        assert.ok(failures.length >= 2);
        assert.ok(failures.every((f) => !f.reason.includes("hunter2")), JSON.stringify(failures));
    });

    it("parseImageInputs throws one readable error listing every failure", () => {
        assert.throws(() => parseImageInputs({ ...good, imageId: "/x", onConflict: "nope" }), /imageId: .*onConflict: /);
        assert.deepEqual(parseImageInputs({ ...good, __provider: "x" }), good);
    });
});

describe("CloudflareImage diff (pure)", () => {
    const olds = { ...good, metadata: { alt: "a" }, apiToken: "t1", deliveryUrl: "u", variants: [], adopted: false, __provider: "old build" };
    const news = { ...good, metadata: { alt: "a" }, apiToken: "t1", __provider: "new build" };

    it("a new provider build alone is no change", () => {
        assert.deepEqual(diffImage(olds, news), { changes: false });
    });
    it("absent and default values are the same image", () => {
        assert.deepEqual(diffImage({ ...good }, { ...good, metadata: {}, requireSignedURLs: false, apiBaseUrl: "https://api.cloudflare.com/client/v4" }), { changes: false });
    });
    it("a new sourceHash replaces, deleting first because the custom ID stays", () => {
        assert.deepEqual(diffImage(olds, { ...news, sourceHash: `${good.sourceHash}-2` }), { changes: true, replaces: ["sourceHash"], deleteBeforeReplace: true });
        assert.deepEqual(diffImage(olds, { ...news, url: `${good.url}-2`, sourceHash: `${good.sourceHash}-2` }), { changes: true, replaces: ["sourceHash"], deleteBeforeReplace: true });
    });
    it("the same bytes from another place (new url, url to filePath, a moved checkout) is an update with no API call", () => {
        assert.deepEqual(diffImage(olds, { ...news, url: `${good.url}-2` }), { changes: true });
        assert.deepEqual(diffImage(olds, { ...news, url: undefined, filePath: "/elsewhere/checkout/a.jpg" }), { changes: true });
        assert.deepEqual(needsPatch(olds, { ...news, url: undefined, filePath: "/elsewhere/checkout/a.jpg" }), { metadata: false, requireSignedURLs: false });
    });
    it("a new imageId replaces create-before-delete", () => {
        assert.deepEqual(diffImage(olds, { ...news, imageId: "other.jpg" }), { changes: true, replaces: ["imageId"], deleteBeforeReplace: false });
    });
    it("metadata, token and endpoint changes are updates; only metadata needs a PATCH", () => {
        assert.deepEqual(diffImage(olds, { ...news, metadata: { alt: "b" } }), { changes: true });
        assert.deepEqual(diffImage(olds, { ...news, apiToken: "t2" }), { changes: true });
        assert.deepEqual(diffImage(olds, { ...news, apiBaseUrl: "http://127.0.0.1:1/client/v4" }), { changes: true });
        assert.deepEqual(needsPatch(olds, { ...news, apiToken: "t2" }), { metadata: false, requireSignedURLs: false });
        assert.deepEqual(needsPatch(olds, { ...news, metadata: { alt: "b" } }), { metadata: true, requireSignedURLs: false });
    });
    it("metadata key order is no change; an unknown value is a change", () => {
        assert.deepEqual(diffImage({ ...olds, metadata: { a: 1, b: 2 } }, { ...news, metadata: { b: 2, a: 1 } }), { changes: false });
        assert.deepEqual(diffImage(olds, { ...news, apiToken: UNKNOWN }), { changes: true });
    });
    it("onConflict and s3 steer only a create: no change", () => {
        assert.deepEqual(diffImage(olds, { ...news, onConflict: "overwrite" }), { changes: false });
    });
});

describe("source hash metadata and outputs (pure)", () => {
    it("packs the hash under the reserved key and unpacks it back", () => {
        const packed = packMetadata({ alt: "a" }, "h1");
        assert.deepEqual(packed, { alt: "a", [SOURCE_HASH_KEY]: "h1" });
        assert.deepEqual(unpackMetadata(packed), { metadata: { alt: "a" }, sourceHash: "h1" });
        assert.deepEqual(unpackMetadata(null), { metadata: {} });
        assert.equal(metadataBytes(packed), JSON.stringify(packed).length);
        assert.ok(METADATA_MAX_BYTES === 1024);
    });
    it("delivery URLs encode % as %25 and keep the path", () => {
        assert.equal(deliveryUrlFor("h", "a/b 100%.jpg"), "https://imagedelivery.net/h/a/b 100%25.jpg/public");
        assert.equal(deliveryUrlFor("h", "x.png", "thumb"), "https://imagedelivery.net/h/x.png/thumb");
        assert.equal(pickDeliveryUrl(["https://imagedelivery.net/h/x/thumb", "https://imagedelivery.net/h/x/public"]), "https://imagedelivery.net/h/x/public");
    });
    it("outputs carry the inputs and what Cloudflare reports, without the reserved key", () => {
        const outs = imageOutputs({ ...good, metadata: { alt: "a" } }, {
            id: good.imageId, filename: "shoe-1.jpg", meta: { alt: "a", [SOURCE_HASH_KEY]: "etag-1" }, requireSignedURLs: false,
            uploaded: "2026-01-01T00:00:00.000Z", variants: ["https://imagedelivery.net/h/products/shoe-1.jpg/public"],
        }, true);
        assert.deepEqual(outs, { ...good, metadata: { alt: "a" }, requireSignedURLs: false, filename: "shoe-1.jpg",
            deliveryUrl: "https://imagedelivery.net/h/products/shoe-1.jpg/public", variants: ["https://imagedelivery.net/h/products/shoe-1.jpg/public"],
            uploaded: "2026-01-01T00:00:00.000Z", adopted: true });
    });
});
