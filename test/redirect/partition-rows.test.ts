// Two partitions' RedirectRows (two stacks, each with its own state and provider host) writing one real D1 database
// (miniflare) through the emulator's D1 HTTP API: disjoint rows, no row taken from a sibling partition, and a destroy
// of one partition that leaves the other's rows.
import { strict as assert } from "assert";
import { startEmulator, Emulator } from "../emulator";
import { miniflareD1Backend } from "../emulator/d1-miniflare";
import { DesiredResource, EngineDriver, secret } from "../host/engine-driver";
import { rowsFromMappings, type RedirectMapping } from "../../components/redirect-layer";
import { REDIRECT_ROWS_SECRET_OUTPUTS } from "../../provider/redirect-rows";
import { shardOwnerName, shardRows } from "../../provider/redirect/rows";
import { DATABASE_ID, RedirectWorkers, seedRows, serializedRowsProvider, startRedirectWorkers } from "./fixtures";
import { applyRedirectSchema } from "../../local/redirect-worker";

const TOKEN = "tok-partition-rows-41d7";
const TYPE = "pulumi-nodejs:dynamic/sourcing-kit:RedirectRows";
const COUNT = 2;
const url = (id: string): string => `https://imagedelivery.net/hash-test/${id}/public`;

/** The whole plan's mapping, as every partition's stack computes it: 60 images, one old URL each. */
const MAPPING: RedirectMapping = Object.fromEntries(Array.from({ length: 60 }, (_, i) => {
    const id = `photos/${i}.jpg`;
    return [`https://old-cdn.test/${id}`, { imageId: id, deliveryUrl: url(id) }];
}));

describe("RedirectRows of two partitions in one D1 database", function () {
    let workers: RedirectWorkers;
    let emulator: Emulator;
    const drivers: EngineDriver[] = [];
    let providerText: string;

    /** What RedirectLayer declares in partition `index`'s stack: its rows, in shards of at most 10. */
    const partitionShards = (index: number, extraRows: Record<string, string> = {}): DesiredResource[] => {
        const partition = { index, count: COUNT };
        const rows = { ...rowsFromMappings([MAPPING], false, partition), ...extraRows };
        return [...shardRows(rows, 10)].map(([prefix, shardRowsOf]) => {
            const name = shardOwnerName("redirects", prefix, partition);
            return {
                urn: `urn:pulumi:prod-${index}::sourcing-kit::${TYPE}::${name}`,
                additionalSecretOutputs: REDIRECT_ROWS_SECRET_OUTPUTS,
                inputs: { __provider: providerText, accountId: emulator.accountId, databaseId: DATABASE_ID, shard: name, rows: shardRowsOf, apiBaseUrl: emulator.baseUrl },
            };
        });
    };
    const table = async (): Promise<Map<string, { shard: string; location: string }>> => {
        const { results } = await (workers.db.prepare("SELECT path, shard, location FROM redirects ORDER BY path").bind() as unknown as
            { all(): Promise<{ results: { path: string; shard: string; location: string }[] }> }).all();
        return new Map(results.map((r) => [r.path, { shard: r.shard, location: r.location }]));
    };
    const ownerPartition = (shard: string): number | undefined => {
        const match = /^redirects-p(\d+)of2-rows-/.exec(shard);
        return match ? Number(match[1]) : undefined;
    };

    before(async () => {
        providerText = await serializedRowsProvider();
        workers = await startRedirectWorkers([{ name: "reader", bindings: { FALLBACK: "404", CACHE_TTL: "0", NEGATIVE_CACHE_TTL: "0" } }], { applySchema: false });
        emulator = await startEmulator({ tokens: [TOKEN], d1: miniflareD1Backend({ [DATABASE_ID]: workers.db }) });
        for (let i = 0; i < COUNT; i++) drivers.push(await EngineDriver.start({ "cloudflare:apiToken": secret(TOKEN) }));
    });

    after(async () => {
        for (const driver of drivers) await driver.host.kill();
        await emulator?.close();
        await workers?.dispose();
    });

    it("two stacks' concurrent ups write every row once, each owned by its own partition's shard; one Worker serves both", async () => {
        // An unpartitioned stack's row from before the split: partition stacks take it over (as after a count change).
        const before = Object.keys(rowsFromMappings([MAPPING]))[0]!;
        await applyRedirectSchema(workers.db);
        await seedRows(workers.db as never, { [before]: "https://imagedelivery.net/hash-test/old/public" }, "redirects-rows-all");

        const runs = await Promise.all(drivers.map((driver, index) => driver.up(partitionShards(index))));
        for (const run of runs) assert.deepEqual(run.errors, []);
        const rows = await table();
        const whole = rowsFromMappings([MAPPING]);
        assert.deepEqual([...rows.keys()].sort(), Object.keys(whole).sort());
        const perPartition = [0, 0];
        for (const [path, row] of rows) {
            const owner = ownerPartition(row.shard);
            assert.ok(owner !== undefined, `${path} owned by ${row.shard}`);
            assert.equal(row.location, whole[path]);
            assert.ok(Object.hasOwn(rowsFromMappings([MAPPING], false, { index: owner, count: COUNT }), path), `${path} in the wrong partition`);
            perPartition[owner]!++;
        }
        assert.ok(perPartition.every((n) => n > 15), `rows per partition ${perPartition.join(", ")}`);
        for (const path of ["/photos/0.jpg", "/photos/59.jpg"]) {
            const res = await workers.fetch("reader", `http://old-cdn.test${path}`);
            assert.equal(res.status, 301);
            assert.equal(res.headers.get("location"), whole[path]);
        }
    });

    it("a partition never takes a row its sibling owns, even when its own plan (set up apart) claims it", async () => {
        const rows = await table();
        const [siblingPath] = [...rows].find(([, row]) => ownerPartition(row.shard) === 0)!;
        const run = await drivers[1]!.up(partitionShards(1, { [siblingPath]: url("someone-else") }));
        assert.deepEqual(run.errors, []);
        assert.deepEqual((await table()).get(siblingPath), rows.get(siblingPath), "the row stays partition 0's");
    });

    it("destroying one partition's stack removes its rows and leaves every row of the other", async () => {
        const beforeRows = await table();
        await drivers[0]!.destroy();
        const after = await table();
        for (const [path, row] of beforeRows) {
            if (ownerPartition(row.shard) === 0) assert.equal(after.get(path), undefined, `${path} left behind`);
            else assert.deepEqual(after.get(path), row, `${path} of partition 1 touched`);
        }
        assert.ok(after.size > 15);
        await drivers[1]!.destroy();
        assert.equal((await table()).size, 0);
    });
});
