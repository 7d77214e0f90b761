import { strict as assert } from "assert";
import { deliveryUrlFromTemplate, deliveryUrlTemplate, metaDigest, planBatch, planHasChanges, storedImage } from "../../provider/image-batch-plan";

describe("CloudflareImageBatch plan (pure)", () => {
    const olds = {
        accountId: "acc", owner: "s/b1",
        images: {
            "a.png": storedImage({ sourceHash: "h-a" }, false),
            "b.png": storedImage({ sourceHash: "h-b" }, false),
            "c.png": storedImage({ sourceHash: "h-c", metadata: { alt: "c" } }, true),
            "d.png": storedImage({ sourceHash: "h-d" }, false),
        },
    };

    it("sorts each image into add, re-upload, patch, remove or unchanged, from the stored outputs", () => {
        const news = {
            accountId: "acc", owner: "s/b1",
            images: { "a.png": { sourceHash: "h-a" }, "b.png": { sourceHash: "h-b2" }, "c.png": { sourceHash: "h-c", metadata: { alt: "C" } }, "e.png": { sourceHash: "h-e" } },
        };
        const plan = planBatch(olds, news);
        assert.deepEqual(
            { add: plan.add, reupload: plan.reupload, patch: plan.patch, remove: plan.remove, unchanged: plan.unchanged },
            { add: ["e.png"], reupload: ["b.png"], patch: ["c.png"], remove: ["d.png"], unchanged: ["a.png"] },
        );
        assert.equal(planHasChanges(plan), true);
    });

    it("the same images are no change; a new owner (aliased rename) re-tags every image; a new token is a change with no image work", () => {
        const same = { accountId: "acc", owner: "s/b1", images: { "a.png": { sourceHash: "h-a" }, "b.png": { sourceHash: "h-b" }, "c.png": { sourceHash: "h-c", metadata: { alt: "c" } }, "d.png": { sourceHash: "h-d" } } };
        assert.equal(planHasChanges(planBatch(olds, same)), false);
        assert.deepEqual(planBatch(olds, { ...same, owner: "s/b9" }).patch.sort(), ["a.png", "b.png", "c.png", "d.png"]);
        const token = planBatch(olds, { ...same, apiToken: "t2" });
        assert.equal(token.settingsChanged && token.add.length + token.patch.length + token.remove.length === 0, true);
    });

    it("metadata digests ignore key order and tell access apart; none is stored for no metadata", () => {
        assert.equal(metaDigest({ a: 1, b: "x" }, false), metaDigest({ b: "x", a: 1 }, undefined));
        assert.notEqual(metaDigest({ a: 1 }, false), metaDigest({ a: 1 }, true));
        assert.equal(metaDigest({}, false), undefined);
        assert.deepEqual(storedImage({ sourceHash: "h" }, false), { sourceHash: "h" });
    });

    it("the delivery URL template is learned from the variants, % written %25", () => {
        const t = deliveryUrlTemplate("a/100%.png", ["https://imagedelivery.net/HASH/a/100%25.png/public"])!;
        assert.equal(t, "https://imagedelivery.net/HASH/{id}/public");
        assert.equal(deliveryUrlFromTemplate(t, "x/5%.png"), "https://imagedelivery.net/HASH/x/5%25.png/public");
    });
});
