import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { RecordingMocks, resolveOutputs, settled } from "./mocks";
import { CustomIdClaims, type SetClaim } from "../../components/custom-id-claims";
import { MigratedImageSet } from "../../components/migrated-image-set";
import { inPartition } from "../../components/partition";

// The stack program, as `pulumi preview` runs it: `export = async () => outputs`.
import program = require("../../index");

const IMAGE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";
const ROWS = "pulumi-nodejs:dynamic/sourcing-kit:RedirectRows";
const DATABASE_ID = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b";

/** 120 old URLs, 10 of them an earlier image's URL again (with a fragment: the same normalised URL), 6 not images. */
const URLS = [
    ...Array.from({ length: 104 }, (_, i) => `https://old-cdn.example.com/catalog/${i}.jpg`),
    ...Array.from({ length: 10 }, (_, i) => `https://old-cdn.example.com/catalog/${i}.jpg#zoom`),
    ...Array.from({ length: 6 }, (_, i) => `https://old-cdn.example.com/docs/${i}.pdf`),
];

function stackConfig(partition?: { index: number; count: number }): Record<string, string> {
    return {
        "cloudflare:apiToken": "bootstrap-token",
        "sourcing-kit:accountId": "9a7806061c88ada191ed06f989cc3dac",
        "sourcing-kit:accountHash": "Vi7wi5KSItxGFsWRG2Us6Q",
        "sourcing-kit:preflight": "off",
        "sourcing-kit:sources": JSON.stringify([{ kind: "urls", name: "catalog", urls: URLS }]),
        "sourcing-kit:redirects": JSON.stringify({ databaseId: DATABASE_ID, deployWorker: false, fallback: "404" }),
        ...(partition ? { "sourcing-kit:partition": JSON.stringify(partition) } : {}),
    };
}

interface Run { images: string[]; shards: { name: string; shard: string; rows: Record<string, string> }[]; outputs: Record<string, unknown> }


/** The program in preview under mocks, as stack `stack` with `config`: its images, redirect shards and outputs. */
async function preview(stack: string, config: Record<string, string>): Promise<Run> {
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, "sourcing-kit", stack, true);
    pulumi.runtime.setAllConfig(config, ["cloudflare:apiToken"]);
    const outputs = (await resolveOutputs(await program())) as Record<string, unknown>;
    await settled();
    return {
        images: mocks.ofType(IMAGE).map((r) => String(r.inputs.imageId)),
        shards: mocks.ofType(ROWS).map((r) => ({ name: r.name, shard: String(r.inputs.shard), rows: r.inputs.rows as Record<string, string> })),
        outputs,
    };
}

describe("the stack program under mocks: a library split over 4 partition stacks", () => {
    let whole: Run;
    const parts: Run[] = [];

    before(async () => {
        whole = await preview("prod", stackConfig());
        for (let index = 0; index < 4; index++) parts.push(await preview(`prod-${index}`, stackConfig({ index, count: 4 })));
    });
    after(() => pulumi.runtime.setAllConfig({}, []));

    it("declares every planned image in exactly one partition's stack", () => {
        const declared = parts.flatMap((p) => p.images);
        assert.equal(new Set(declared).size, declared.length, "an image declared by two stacks");
        assert.deepStrictEqual([...declared].sort(), [...whole.images].sort());
        assert.equal(whole.images.length, 104);
        for (const p of parts) assert.ok(p.images.length >= 10 && p.images.length <= 45, `${p.images.length} images`);
    });

    it("writes each redirect row from exactly one stack, under shard names that carry the partition", () => {
        const rows = parts.flatMap((p) => p.shards.flatMap((s) => Object.keys(s.rows)));
        assert.equal(new Set(rows).size, rows.length, "a row written by two stacks");
        assert.deepStrictEqual([...rows].sort(), whole.shards.flatMap((s) => Object.keys(s.rows)).sort());
        assert.deepStrictEqual(whole.shards.map((s) => s.shard), ["redirects-rows-all"]);
        parts.forEach((p, index) => {
            assert.deepStrictEqual(p.shards.map((s) => [s.name, s.shard]), [[`redirects-p${index}of4-rows-all`, `redirects-p${index}of4-rows-all`]]);
            for (const target of Object.values(p.shards[0]!.rows)) {
                const id = /\/Vi7wi5KSItxGFsWRG2Us6Q\/(.+)\/public$/.exec(target)![1]!;
                assert.ok(p.images.includes(id), `${target}: a row for an image another stack declares`);
            }
        });
    });

    it("reports each stack's own counts, which add up to the library's, and its partition", () => {
        type Counts = { planned: number; skipped: Record<string, number>; duplicates: number };
        const counts = parts.map((p) => (p.outputs.sources as Record<string, Counts>).catalog!);
        const wholeCounts = (whole.outputs.sources as Record<string, Counts>).catalog!;
        assert.deepStrictEqual(wholeCounts, { planned: 104, skipped: { "not-an-image": 6 }, duplicates: 10 });
        assert.equal(counts.reduce((n, c) => n + c.planned, 0), 104);
        assert.equal(counts.reduce((n, c) => n + c.duplicates, 0), 10);
        assert.equal(counts.reduce((n, c) => n + (c.skipped["not-an-image"] ?? 0), 0), 6);
        assert.deepStrictEqual(parts.map((p) => p.outputs.partition), [0, 1, 2, 3].map((index) => ({ index, count: 4 })));
        assert.equal(whole.outputs.partition, undefined);
        assert.deepStrictEqual(parts.map((p) => p.outputs.imagesPlanned), counts.map((c) => c.planned));
    });
});

describe("MigratedImageSet with a partition: what the claims and the pre-flight see", () => {
    it("hands the claims check (the pre-flight) only the partition's planned images", async () => {
        await pulumi.runtime.setMocks(new RecordingMocks(), "sourcing-kit", "prod-1", true);
        const seen: SetClaim[] = [];
        const claims = new CustomIdClaims(1, async (c) => { seen.push(...c.map((claim) => ({ ...claim, images: [...claim.images] }))); });
        const partition = { index: 1, count: 4 };
        const set = new MigratedImageSet("catalog", {
            accountId: "9a7806061c88ada191ed06f989cc3dac", accountHash: "Vi7wi5KSItxGFsWRG2Us6Q",
            source: { kind: "urls", urls: URLS }, idClaims: claims, partition,
        });
        const planned = await new Promise<number>((done) => set.planned.apply((n) => { done(n); return n; }));
        await claims.ready();
        await settled();
        assert.equal(seen.length, 1);
        const ids = seen[0]!.images.map((i) => i.imageId);
        assert.equal(ids.length, planned);
        assert.ok(planned > 0 && planned < 104, `${planned}`);
        for (const id of ids) assert.ok(inPartition(id, partition), `${id} is another partition's`);
    });
});
