import { strict as assert } from "assert";
import { checkImageInputs, parseImageInputs, UNKNOWN } from "../../provider/image-inputs";
import { diffImage, needsPatch } from "../../provider/image-diff";
import { deliveryUrlFor, imageOutputs, pickDeliveryUrl } from "../../provider/image-outputs";
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

    const bad: Array<[string, Record<string, unknown>, string, RegExp]> = [
        ["missing account", { ...good, accountId: undefined }, "accountId", /required.*account ID/],
        ["account with a slash", { ...good, accountId: "acc/1" }, "accountId", /account ID/],
        ["empty image id", { ...good, imageId: "" }, "imageId", /empty.*custom ID/],
        ["image id over 1024 characters", { ...good, imageId: "a".repeat(1025) }, "imageId", /1024/],
        ["image id with a leading slash", { ...good, imageId: "/a.jpg" }, "imageId", /start or end with '\/'/],
        ["image id with a trailing slash", { ...good, imageId: "a/" }, "imageId", /start or end with '\/'/],
        ["image id that is a UUID", { ...good, imageId: "8f14e45f-ceea-467f-a8f5-3c5a0b1f2d3e" }, "imageId", /UUID/],
        ["image id with a space", { ...good, imageId: "a b.jpg" }, "imageId", /whitespace/],
        ["image id with an empty segment", { ...good, imageId: "a//b.jpg" }, "imageId", /empty path segment/],
        ["bad url scheme", { ...good, url: "ftp://h/a.jpg" }, "url", /scheme "ftp:".*https:\/\//],
        ["not a url", { ...good, url: "shoe.jpg" }, "url", /not a valid URL/],
        ["credentials in the url", { ...good, url: "https://user:pw@h/a.jpg" }, "url", /credentials/],
        ["presigned url", { ...good, url: "https://b.s3.amazonaws.com/a.jpg?X-Amz-Signature=ab&X-Amz-Credential=c" }, "url", /s3:\/\/bucket\/key/],
        ["s3 url without a key", { ...good, url: "s3://my-bucket/" }, "url", /no object key/],
        ["both url and filePath", { ...good, filePath: "a.jpg" }, "url", /exactly one/],
        ["neither url nor filePath", { ...good, url: undefined }, "url", /exactly one/],
        ["missing source hash", { ...good, sourceHash: undefined }, "sourceHash", /required.*ETag/],
        ["metadata over 1024 bytes", { ...good, metadata: { alt: "x".repeat(1020) } }, "metadata", /1024/],
        ["nested metadata value", { ...good, metadata: { tags: ["a"] } }, "metadata.tags", /string, number or boolean/],
        ["reserved metadata key", { ...good, metadata: { [SOURCE_HASH_KEY]: "x" } }, `metadata.${SOURCE_HASH_KEY}`, /reserved/],
        ["requireSignedURLs with a custom ID", { ...good, requireSignedURLs: true }, "requireSignedURLs", /custom ID.*false/],
        ["requireSignedURLs not a boolean", { ...good, requireSignedURLs: "yes" }, "requireSignedURLs", /true or false/],
        ["onConflict outside the enum", { ...good, onConflict: "skip" }, "onConflict", /adopt, overwrite or fail/],
        ["apiBaseUrl not http", { ...good, apiBaseUrl: "api.cloudflare.com" }, "apiBaseUrl", /http\(s\)/],
        ["apiToken with whitespace", { ...good, apiToken: "abc def" }, "apiToken", /whitespace/],
        ["s3 options on an https url", { ...good, s3: { region: "eu-west-1" } }, "s3", /s3:\/\//],
        ["unknown s3 option", { ...good, url: "s3://my-bucket/a.jpg", s3: { bucket: "x" } }, "s3", /region, endpoint and forcePathStyle/],
        ["unknown property", { ...good, metdata: { a: 1 } }, "metdata", /unknown property.*metadata/],
    ];
    for (const [name, input, property, reason] of bad) {
        it(`rejects ${name} with a failure on ${property}`, () => {
            const failures = checkImageInputs(input);
            const hit = failures.find((f) => f.property === property);
            assert.ok(hit, `no failure on ${property}: ${JSON.stringify(failures)}`);
            assert.match(hit!.reason, reason);
        });
    }

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
    for (const key of ["sourceHash", "url"] as const) {
        it(`a new ${key} replaces, deleting first because the custom ID stays`, () => {
            assert.deepEqual(diffImage(olds, { ...news, [key]: `${good[key]}-2` }), { changes: true, replaces: [key], deleteBeforeReplace: true });
        });
    }
    it("url to filePath replaces; a new imageId replaces create-before-delete", () => {
        assert.deepEqual(diffImage(olds, { ...news, url: undefined, filePath: "a.jpg" }).replaces, ["url", "filePath"]);
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
