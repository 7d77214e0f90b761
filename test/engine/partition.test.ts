// One library split over two stacks (sourcing-kit:partition 0 and 1 of 2) of one project, each with its own token:
// both `pulumi up` run at once, with the real CLI, against one emulator and one D1 database.
import { strict as assert } from "assert";
import { startEmulator, Emulator } from "../emulator";
import { miniflareD1Backend } from "../emulator/d1-miniflare";
import { pngBytes } from "../emulator/fixtures";
import { RedirectWorkers, startRedirectWorkers } from "../redirect/fixtures";
import { partitionOf } from "../../components/partition";
import { describeEngine } from "./cli";
import { EngineProject, readable } from "./project";

const TOKENS = ["engine-partition-0-token", "engine-partition-1-token"];
const DATABASE_ID = "7d0e9c1b-2a3f-4b5c-8d6e-0f1a2b3c4d5e";
const IMAGES = 16;
const ID = (i: number) => `lib/img-${String(i).padStart(2, "0")}.png`;

describeEngine("real engine: a library split over two partition stacks", function () {
    this.timeout(180_000);
    let emu: Emulator;
    let workers: RedirectWorkers;
    let project: EngineProject;

    before(async () => {
        workers = await startRedirectWorkers([{ name: "reader", bindings: { FALLBACK: "404", CACHE_TTL: "0", NEGATIVE_CACHE_TTL: "0" }, databaseId: DATABASE_ID }]);
        emu = await startEmulator({ tokens: TOKENS, rateLimit: { requests: 100_000, windowSeconds: 300 }, d1: miniflareD1Backend({ [DATABASE_ID]: workers.db }) });
        project = await EngineProject.create();
        for (let i = 0; i < IMAGES; i++) await project.writeFile(`library/img-${String(i).padStart(2, "0")}.png`, pngBytes(i + 1));
        for (const index of [0, 1]) {
            await project.initStack(`prod-${index}`, {
                "sourcing-kit:apiBaseUrl": emu.baseUrl,
                "sourcing-kit:accountId": emu.accountId,
                "sourcing-kit:accountHash": emu.accountHash,
                "sourcing-kit:scopedToken": false,
                "sourcing-kit:partition": { index, count: 2 },
                "sourcing-kit:sources": [{ kind: "local", name: "library", dir: "library", idPrefix: "lib" }],
                "sourcing-kit:redirects": { databaseId: DATABASE_ID, deployWorker: false, fallback: "404" },
            });
        }
    });
    after(async () => {
        await project?.close();
        await emu?.close();
        await workers?.dispose();
    });

    it("two concurrent ups, each with its own token, upload every planned image exactly once; each state holds only its slice", async () => {
        const ups = [0, 1].map((index) => project.update("up", `prod-${index}`, [], { env: { CLOUDFLARE_API_TOKEN: TOKENS[index] } }));
        const results = await Promise.all(ups);
        for (const [index, run] of results.entries()) {
            assert.deepEqual(run.failed, [], readable(run.result.stdout));
            const line = run.diagnostics.map((d) => d.message).find((m) => m.includes("library: partition"));
            assert.match(line ?? readable(run.result.stdout), new RegExp(`library: partition ${index} of 2: \\d+ of ${IMAGES} planned images`));
        }

        const planned = Array.from({ length: IMAGES }, (_, i) => ID(i));
        assert.deepEqual([...emu.images.keys()].sort(), planned, "the emulator holds the whole plan");
        assert.equal(emu.counters.uploads, IMAGES, "each image uploaded once, by one stack");
        const slices = await Promise.all([0, 1].map(async (index) => [...(await project.stateImages(`prod-${index}`)).keys()].sort()));
        for (const [index, slice] of slices.entries()) {
            assert.ok(slice.length > 0, `partition ${index} is empty`);
            for (const id of slice) assert.equal(partitionOf(id, 2), index, `${id} in the state of prod-${index}`);
        }
        assert.deepEqual([...slices[0]!, ...slices[1]!].sort(), planned, "the slices are disjoint and together the plan");

        // One D1 table: every image's row once, owned by a shard of its own partition.
        const { results: rows } = await (workers.db.prepare("SELECT image_id, shard FROM redirects ORDER BY image_id").bind() as unknown as
            { all(): Promise<{ results: { image_id: string; shard: string }[] }> }).all();
        assert.deepEqual(rows.map((r) => r.image_id), planned);
        for (const r of rows) assert.equal(r.shard, `redirects-p${partitionOf(r.image_id, 2)}of2-rows-all`);
    });
});
