import { strict as assert } from "assert";
import {
    batches, D1_MAX_PARAMS, D1_MAX_STATEMENT_BYTES, deleteStatements, diffRows, Rows, shardLabel, shardRows, upsertStatements,
} from "../../provider/redirect/rows";

const rowsOf = (n: number, from = 0): Rows =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`/img/${from + i}.jpg`, `https://imagedelivery.net/h/img-${from + i}/public`]));

describe("row sharding", () => {
    it("keeps everything in one shard labelled 'all' while it fits", () => {
        const shards = shardRows(rowsOf(10), 1000);
        assert.deepEqual([...shards.keys()], [""]);
        assert.equal(shardLabel(""), "all");
        assert.equal(Object.keys(shards.get("")!).length, 10);
    });

    it("gives an empty set one empty shard", () => {
        assert.deepEqual([...shardRows({}).entries()], [["", {}]]);
    });

    it("splits 5,000 rows into shards of at most 1,000 that cover every row exactly once", () => {
        const rows = rowsOf(5000);
        const shards = shardRows(rows);
        const seen = new Set<string>();
        for (const shard of shards.values()) {
            assert.ok(Object.keys(shard).length <= 1000);
            for (const path of Object.keys(shard)) {
                assert.ok(!seen.has(path));
                seen.add(path);
                assert.equal(shard[path], rows[path]);
            }
        }
        assert.equal(seen.size, 5000);
        assert.ok([...shards.keys()].every((k) => /^[01]+$/.test(k)));
    });

    it("adding rows only touches the shards that receive them (no reshuffle)", () => {
        const before = shardRows(rowsOf(3000), 500);
        const after = shardRows(rowsOf(3050), 500);
        let unchanged = 0;
        for (const [prefix, rows] of before) {
            const same = after.get(prefix);
            if (same === undefined) {
                // a split shard: its rows went to its children only
                for (const path of Object.keys(rows)) {
                    const owner = [...after.keys()].find((k) => after.get(k)![path] !== undefined)!;
                    assert.ok(owner.startsWith(prefix));
                }
            } else if (Object.keys(rows).every((p) => same[p] === rows[p])) {
                unchanged++;
            }
        }
        const moved = [...before].filter(([prefix, rows]) => {
            const same = after.get(prefix);
            return same !== undefined && Object.keys(rows).some((p) => same[p] === undefined);
        });
        assert.deepEqual(moved, [], "no existing row leaves a shard that still exists");
        assert.ok(unchanged > 0);
    });

    it("rejects a shard size over D1-friendly 1,000", () => {
        assert.throws(() => shardRows({}, 1001), /shardSize 1001/);
    });
});

describe("row diff", () => {
    it("lists added and changed rows as upserts and removed paths as deletes", () => {
        const olds = { "/a": "u1", "/b": "u2", "/c": "u3" };
        const news = { "/a": "u1", "/b": "u2-new", "/d": "u4" };
        assert.deepEqual(diffRows(olds, news), { upserts: { "/b": "u2-new", "/d": "u4" }, deletes: ["/c"] });
        assert.deepEqual(diffRows(news, news), { upserts: {}, deletes: [] });
    });
});

describe("SQL batching within D1 limits", () => {
    it("writes 1,000 rows as upserts of at most 100 bound parameters each, shard owner set", () => {
        const statements = upsertStatements("layer-rows-all", rowsOf(1000));
        assert.equal(statements.reduce((n, s) => n + s.params.length / 4, 0), 1000);
        for (const s of statements) {
            assert.ok(s.params.length <= D1_MAX_PARAMS);
            assert.match(s.sql, /ON CONFLICT \(path\) DO UPDATE/);
            assert.equal(s.params[3], "layer-rows-all");
        }
        assert.equal(statements[0].params[2], "img-0");
    });

    it("splits long rows by statement bytes before the parameter limit", () => {
        const long = "x".repeat(30_000);
        const rows = Object.fromEntries(["/a", "/b", "/c", "/d"].map((p) => [p, `https://example.com/${long}`]));
        const statements = upsertStatements("s", rows);
        assert.ok(statements.length >= 2);
        for (const s of statements) {
            const size = Buffer.byteLength(s.sql) + s.params.reduce((n, p) => n + Buffer.byteLength(p), 0);
            assert.ok(size <= D1_MAX_STATEMENT_BYTES, `statement of ${size} bytes`);
        }
    });

    it("rejects a single row that can never fit a statement, naming it", () => {
        assert.throws(() => upsertStatements("s", { "/huge": "https://e.com/" + "y".repeat(D1_MAX_STATEMENT_BYTES) }), /"\/huge".*100000-byte/);
    });

    it("deletes only rows the shard owns, 99 paths per statement", () => {
        const paths = Object.keys(rowsOf(250));
        const statements = deleteStatements("s1", paths);
        assert.deepEqual(statements.map((s) => s.params.length), [100, 100, 53]);
        for (const s of statements) {
            assert.equal(s.params[0], "s1");
            assert.match(s.sql, /^DELETE FROM redirects WHERE shard = \? AND path IN/);
        }
        assert.deepEqual(deleteStatements("s1", []), []);
    });

    it("groups statements into request batches", () => {
        assert.deepEqual(batches([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
    });
});
