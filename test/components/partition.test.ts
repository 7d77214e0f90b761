import { strict as assert } from "assert";
import { planImages, type ImagePlan } from "../../components/image-plan";
import { summaryLine } from "../../components/migrated-image-set";
import { inPartition, partitionOf } from "../../components/partition";
import { rowsFromMappings } from "../../components/redirect-layer";
import type { SourceImage } from "../../components/sources/types";

const IDS = Array.from({ length: 100_000 }, (_, i) => `products/${i % 97}/item-${i}.jpg`);
const COUNTS = [1, 2, 3, 8];

describe("partitions: assignment by custom ID", () => {
    const assigned = new Map<number, number[]>();
    before(() => {
        for (const count of [...COUNTS, 9]) assigned.set(count, IDS.map((id) => partitionOf(id, count)));
    });

    for (const count of COUNTS) {
        it(`puts each of 100,000 IDs in exactly one of ${count} partitions (disjoint and complete)`, () => {
            const seen = new Map<string, number>();
            for (let index = 0; index < count; index++) {
                for (const id of IDS) {
                    if (!inPartition(id, { index, count })) continue;
                    assert.equal(seen.get(id), undefined, `${id} in partitions ${seen.get(id)} and ${index}`);
                    seen.set(id, index);
                }
            }
            assert.equal(seen.size, IDS.length);
            for (const [id, index] of seen) {
                assert.ok(index >= 0 && index < count, `${id}: ${index}`);
            }
        });

        it(`spreads 100,000 IDs over ${count} partitions within 3% of an even share`, () => {
            const sizes = new Array<number>(count).fill(0);
            for (const p of assigned.get(count)!) sizes[p]!++;
            const even = IDS.length / count;
            for (const size of sizes) assert.ok(Math.abs(size - even) <= 0.03 * even, `sizes ${sizes.join(", ")}`);
        });
    }

    it("depends on the ID alone: adding or removing other IDs moves none", () => {
        const fewer = IDS.filter((_, i) => i % 3 !== 0);
        const more = [...IDS, ...Array.from({ length: 20_000 }, (_, i) => `new/${i}.png`)];
        for (const list of [fewer, more]) {
            const again = new Map(list.map((id) => [id, partitionOf(id, 8)]));
            IDS.forEach((id, i) => {
                if (again.has(id)) assert.equal(again.get(id), assigned.get(8)![i], id);
            });
        }
    });

    it("going from 8 to 9 partitions moves about 1/9 of the IDs, each into the new partition", () => {
        const before8 = assigned.get(8)!;
        const after9 = assigned.get(9)!;
        let moved = 0;
        before8.forEach((p, i) => {
            if (after9[i] === p) return;
            moved++;
            assert.equal(after9[i], 8, `${IDS[i]} moved from ${p} to ${after9[i]}`);
        });
        const share = moved / IDS.length;
        assert.ok(share > 0.1 && share < 0.125, `moved ${share}`);
    });

    it("is the same on every machine and release (pinned values: a change would move images between stacks)", () => {
        const ids = ["a.jpg", "products/shoes/red.jpg", "examples/logo.png", "examples/products/red-shoe.png"];
        assert.deepEqual(ids.map((id) => partitionOf(id, 8)), [5, 0, 2, 1]);
        assert.deepEqual(ids.map((id) => partitionOf(id, 1024)), [810, 763, 377, 570]);
    });

    it("refuses a count outside 1..1024", () => {
        for (const count of [0, 1025, 2.5]) assert.throws(() => partitionOf("a.jpg", count), /from 1 to 1024/);
    });
});

const image = (key: string, extra: Partial<SourceImage> = {}): SourceImage => ({
    key, url: `https://old.example.com/${key}`, contentHash: `hash-${key}`, oldUrls: [`/${key}`], ...extra,
});
const deliveryUrl = (id: string) => `https://imagedelivery.net/h/${id}/public`;

/** A listing with duplicates (same bytes under a second key) and skips (not images). */
function listing(): SourceImage[] {
    const images: SourceImage[] = [];
    for (let i = 0; i < 400; i++) images.push(image(`photos/${i}.jpg`));
    for (let i = 0; i < 60; i++) images.push(image(`copies/${i}.jpg`, { contentHash: `hash-photos/${i}.jpg` }));
    for (let i = 0; i < 40; i++) images.push(image(`docs/${i}.pdf`));
    return images;
}

describe("partitions: planning keeps the partition's slice of one shared plan", () => {
    let whole: ImagePlan;
    const parts: ImagePlan[] = [];
    before(async () => {
        whole = await planImages(listing(), { configPath: "src", deliveryUrl });
        for (let index = 0; index < 4; index++) {
            parts.push(await planImages(listing(), { configPath: "src", deliveryUrl, partition: { index, count: 4 } }));
        }
    });

    it("the four partitions' images are the whole plan, none twice", () => {
        const ids = parts.flatMap((p) => p.images.map((i) => i.imageId));
        assert.equal(new Set(ids).size, ids.length);
        assert.deepEqual([...ids].sort(), whole.images.map((i) => i.imageId).sort());
        for (const p of parts) assert.ok(p.images.length > 60 && p.images.length < 140, `${p.images.length}`);
    });

    it("a duplicate's old URL stays with the image it merged into, in that image's partition", () => {
        for (const p of parts) {
            for (const i of p.images) assert.ok(inPartition(i.imageId, { index: parts.indexOf(p), count: 4 }));
            for (const [oldUrl, target] of Object.entries(p.mapping)) {
                assert.ok(p.images.some((i) => i.imageId === target.imageId), oldUrl);
            }
        }
        const mapped = parts.flatMap((p) => Object.keys(p.mapping));
        assert.deepEqual(mapped.sort(), Object.keys(whole.mapping).sort());
    });

    it("counts skips and duplicates in one partition each, so the stacks' counts add up to the library's", () => {
        const sum = (f: (p: ImagePlan) => number) => parts.reduce((n, p) => n + f(p), 0);
        assert.equal(sum((p) => p.duplicates), whole.duplicates);
        assert.equal(whole.duplicates, 60);
        assert.equal(sum((p) => p.skipped["not-an-image"] ?? 0), 40);
        assert.ok(parts.filter((p) => (p.skipped["not-an-image"] ?? 0) > 0).length > 1, "skips spread over partitions");
    });

    it("every partition keeps the whole plan's mapping for the redirect check, and says its share in the log line", () => {
        for (const p of parts) {
            assert.deepEqual(p.partition?.allMapping, whole.mapping);
            assert.equal(p.partition?.allPlanned, 400);
        }
        const p = parts[2]!;
        assert.equal(summaryLine("photos", p), `photos: partition 2 of 4: ${p.images.length} of 400 planned images, ` +
            `${p.skipped["not-an-image"] ?? 0} skipped${p.skipped["not-an-image"] ? ` (not-an-image ${p.skipped["not-an-image"]})` : ""}, ${p.duplicates} duplicates`);
        assert.equal(summaryLine("photos", whole), "photos: 400 planned, 40 skipped (not-an-image 40), 60 duplicates");
    });

    it("a sample is taken before the split: the partitions share one sample of N", async () => {
        const sampled = await Promise.all([0, 1, 2, 3].map((index) =>
            planImages(listing(), { configPath: "src", deliveryUrl, sample: 100, partition: { index, count: 4 } })));
        const ids = sampled.flatMap((p) => p.images.map((i) => i.imageId)).sort();
        const first100 = (await planImages(listing(), { configPath: "src", deliveryUrl, sample: 100 })).images.map((i) => i.imageId).sort();
        assert.deepEqual(ids, first100);
        assert.equal(sampled.reduce((n, p) => n + p.sampledOut, 0), 300);
    });

    it("count 1 plans exactly as without a partition", async () => {
        const one = await planImages(listing(), { configPath: "src", deliveryUrl, partition: { index: 0, count: 1 } });
        assert.deepEqual(one, whole);
    });

    it("redirect rows: the whole plan is checked for a key two images share, then only the partition's rows are kept", () => {
        const mapping = whole.mapping;
        const rowsOf = (index: number) => rowsFromMappings([mapping], false, { index, count: 4 });
        const keys = [0, 1, 2, 3].flatMap((i) => Object.keys(rowsOf(i)));
        assert.equal(new Set(keys).size, keys.length);
        assert.deepEqual(keys.sort(), Object.keys(rowsFromMappings([mapping])).sort());
        // Two images of different partitions whose old URLs normalise alike: every partition's stack refuses it.
        const [a, b] = pickInDifferentPartitions(whole, 4);
        const clash = { ...mapping, "https://cdn-b.example.com/photos/x.jpg": mapping[`/${b}`]!, "https://cdn-a.example.com/photos/x.jpg": mapping[`/${a}`]! };
        for (let index = 0; index < 4; index++) {
            assert.throws(() => rowsFromMappings([clash], false, { index, count: 4 }), /both normalise to "\/photos\/x\.jpg"/);
        }
    });
});

function pickInDifferentPartitions(plan: ImagePlan, count: number): [string, string] {
    const first = plan.images[0]!;
    const other = plan.images.find((i) => partitionOf(i.imageId, count) !== partitionOf(first.imageId, count))!;
    return [first.key, other.key];
}
