import * as assert from "assert";
import fc from "fast-check";
import { deriveImageId, isValidImageId, MAX_IMAGE_ID_LENGTH } from "../../components/image-id";
import { ImageIdCollisionError, planImages } from "../../components/image-plan";
import { checkImageInputs } from "../../provider/image-inputs";

const anyKey = fc.oneof(
    fc.string({ unit: "binary", maxLength: 80 }),
    fc.array(fc.constantFrom("a", "B", "/", ".", "-", "_", "~", " ", "%", "é", "?", "#", "..", "日"), { maxLength: 40 }).map((parts) => parts.join("")),
    fc.uuid(),
    fc.uuid().map((u) => u.replace(/-/g, "")),
    fc.string({ minLength: 1000, maxLength: 1400 }),
);
const prefix = fc.option(fc.constantFrom("legacy", "shop/v1/", "/media/", "a b"), { nil: undefined });

describe("custom ID derivation", () => {
    it("is deterministic: the same key and prefix always give the same ID", () => {
        fc.assert(fc.property(anyKey, prefix, (key, p) => deriveImageId(key, p) === deriveImageId(key, p)));
    });

    it("always yields a valid ID: safe characters, at most 1024, no edge or double slash, no dot segment, never a UUID", () => {
        fc.assert(
            fc.property(anyKey, prefix, (key, p) => {
                const id = deriveImageId(key, p);
                assert.ok(isValidImageId(id), `invalid id ${JSON.stringify(id)} for ${JSON.stringify(key)}`);
                assert.ok(id.length <= MAX_IMAGE_ID_LENGTH);
                assert.ok(!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(id));
                assert.ok(!id.includes("%"));
            }),
            { numRuns: 500 },
        );
    });

    it("always yields an ID the CloudflareImage provider's check accepts", () => {
        fc.assert(
            fc.property(anyKey, prefix, (key, p) => {
                const failures = checkImageInputs({ accountId: "acc", imageId: deriveImageId(key, p), url: "https://cdn.example.com/a.jpg", sourceHash: "h" });
                assert.deepStrictEqual(failures, [], JSON.stringify(key));
            }),
            { numRuns: 300 },
        );
    });

    it("keeps a key that is already a valid ID unchanged (under its prefix)", () => {
        const validKey = fc
            .array(fc.stringMatching(/^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,15}$/), { minLength: 1, maxLength: 5 })
            .map((segments) => segments.join("/"))
            .filter(isValidImageId);
        fc.assert(
            fc.property(validKey, (key) => {
                assert.strictEqual(deriveImageId(key), key);
                assert.strictEqual(deriveImageId(key, "legacy"), `legacy/${key}`);
            }),
        );
    });

    it("gives distinct keys distinct IDs, even when they clean up alike", () => {
        fc.assert(
            fc.property(anyKey, anyKey, (a, b) => {
                fc.pre(a !== b);
                return deriveImageId(a) !== deriveImageId(b);
            }),
            { numRuns: 500 },
        );
        assert.notStrictEqual(deriveImageId("a b.jpg"), deriveImageId("a?b.jpg"));
        assert.notStrictEqual(deriveImageId("/a.jpg"), deriveImageId("a.jpg"));
    });

    it("keeps the extension readable after a cleaned-up key, and truncates long keys with a hash", () => {
        assert.match(deriveImageId("summer sale/hero image.JPG"), /^summer-sale\/hero-image-[0-9a-f]{8}\.JPG$/);
        assert.match(deriveImageId("photos/café.png"), /^photos\/cafe-[0-9a-f]{8}\.png$/);
        const long = deriveImageId(`${"dir/".repeat(300)}photo.jpg`);
        assert.strictEqual(long.length <= MAX_IMAGE_ID_LENGTH, true);
        assert.match(long, /-[0-9a-f]{8}\.jpg$/);
        assert.notStrictEqual(long, deriveImageId(`${"dir/".repeat(300)}other.jpg`));
    });

    it("never yields a UUID: a UUID-shaped key, dashed or bare (an MD5-named object), gets a suffix", () => {
        fc.assert(fc.property(fc.uuid(), (uuid) => deriveImageId(uuid) !== uuid && isValidImageId(deriveImageId(uuid))));
        const bare = "0123456789abcdef0123456789ABCDEF";
        assert.match(deriveImageId(bare), /^0123456789abcdef0123456789ABCDEF-[0-9a-f]{8}$/);
        assert.strictEqual(deriveImageId(`${bare}.jpg`), `${bare}.jpg`);
    });

    it("detects two keys that land on one ID and names both", async () => {
        await fc.assert(
            fc.asyncProperty(fc.stringMatching(/^[a-z]{1,8}\/[a-z]{1,8}\.jpg$/), async (id) => {
                const images = [
                    { key: "first.jpg", url: "https://a.example/first.jpg", id, oldUrls: ["/first.jpg"] },
                    { key: "second.jpg", url: "https://a.example/second.jpg", id, oldUrls: ["/second.jpg"] },
                ];
                await assert.rejects(
                    planImages(images, { configPath: "sourcing-kit:sources[0]", deliveryUrl: (i) => i }),
                    (error: Error) => {
                        assert.ok(error instanceof ImageIdCollisionError);
                        assert.match(error.message, /^sourcing-kit:sources\[0\]: "first\.jpg".*and "second\.jpg".*both map to image id/);
                        assert.ok(error.message.includes(`"${id}"`));
                        return true;
                    },
                );
            }),
            { numRuns: 50 },
        );
    });
});
