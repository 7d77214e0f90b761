import { strict as assert } from "assert";
import * as fs from "fs";
import type * as pulumi from "@pulumi/pulumi";
import { startEmulator, Emulator } from "../emulator";
import { miniflareD1Backend } from "../emulator/d1-miniflare";
import { D1Client } from "../../provider/d1-client";
import { CloudflareApiError } from "../../provider/errors";
import { checkRowsInputs, diffRowsInputs, provider } from "../../provider/redirect-rows-provider";
import { DATABASE_ID, RedirectWorkers, startRedirectWorkers } from "./fixtures";
import { SCHEMA_PATH, schemaStatements, schemaVersion } from "../../provider/redirect/schema";

const HOST = "http://old-cdn.test";
const url = (id: string): string => `https://imagedelivery.net/hash-test/${id}/public`;
const noConfig = { config: { get: (): string | undefined => undefined } } as unknown as pulumi.dynamic.ConfigureRequest;

describe("RedirectRows through the D1 HTTP API (emulator on miniflare D1)", function () {
    let workers: RedirectWorkers;
    let emulator: Emulator;
    let base: Record<string, unknown>;

    const d1Requests = (): number => emulator.counters.byRoute["POST d1/query 200"] ?? 0;
    const ownedBy = async (shard: string): Promise<Record<string, string>> => {
        const [result] = await new D1Client({ accountId: emulator.accountId, databaseId: DATABASE_ID, apiToken: "test-token", apiBaseUrl: emulator.baseUrl })
            .query([{ sql: "SELECT path, location FROM redirects WHERE shard = ? ORDER BY path", params: [shard] }]);
        return Object.fromEntries(result.results.map((r) => [String(r.path), String(r.location)]));
    };
    const redirectOf = async (path: string): Promise<string | null> => {
        const res = await workers.fetch("reader", `${HOST}${path}`);
        return res.status === 301 ? res.headers.get("location") : null;
    };

    before(async () => {
        workers = await startRedirectWorkers([{ name: "reader", bindings: { FALLBACK: "404", CACHE_TTL: "0", NEGATIVE_CACHE_TTL: "0" } }],
            { applySchema: false });
        emulator = await startEmulator({ d1: miniflareD1Backend({ [DATABASE_ID]: workers.db }) });
        base = { accountId: emulator.accountId, databaseId: DATABASE_ID, apiToken: "test-token", apiBaseUrl: emulator.baseUrl };
        await provider.configure!(noConfig);
    });

    after(async () => {
        await emulator?.close();
        await workers?.dispose();
    });

    it("create applies the schema to an empty database and writes the rows the Worker then redirects", async () => {
        const inputs = { ...base, shard: "layer-rows-all", rows: { "/a.jpg": url("a"), "/b/c%20d.png": url("b/cd"), "/e.gif": url("e") } };
        const created = await provider.create(inputs);
        assert.equal(created.id, `${DATABASE_ID}/layer-rows-all`);
        assert.deepEqual(created.outs, { ...inputs, rowCount: 3 });
        assert.equal(await redirectOf("/b/c d.png"), url("b/cd"));
        assert.deepEqual(await ownedBy("layer-rows-all"), inputs.rows);
    });

    it("create is idempotent: re-running it after a crash converges on the same rows", async () => {
        const inputs = { ...base, shard: "layer-rows-all", rows: { "/a.jpg": url("a"), "/b/c%20d.png": url("b/cd"), "/e.gif": url("e") } };
        await provider.create(inputs);
        assert.equal(Object.keys(await ownedBy("layer-rows-all")).length, 3);
    });

    it("update writes only the difference (removed, changed and added rows) in one request", async () => {
        const olds = { ...base, shard: "layer-rows-all", rows: { "/a.jpg": url("a"), "/b/c%20d.png": url("b/cd"), "/e.gif": url("e") }, rowCount: 3 };
        const news = { ...base, shard: "layer-rows-all", rows: { "/a.jpg": url("a"), "/b/c%20d.png": url("b/v2"), "/f.webp": url("f") } };
        emulator.resetCounters();
        const result = await provider.update!("id", olds, news);
        assert.equal(d1Requests(), 1);
        assert.equal(result.outs.rowCount, 3);
        assert.deepEqual(await ownedBy("layer-rows-all"), news.rows);
        assert.equal(await redirectOf("/e.gif"), null);
        assert.equal(await redirectOf("/b/c%20d.png"), url("b/v2"));
        assert.equal(await redirectOf("/f.webp"), url("f"));
    });

    it("a token or base URL change alone updates without touching D1", async () => {
        const rows = { "/a.jpg": url("a") };
        emulator.resetCounters();
        await provider.update!("id", { ...base, shard: "s", rows, apiToken: "old-token" }, { ...base, shard: "s", rows });
        assert.equal(emulator.counters.requests, 0);
    });

    it("an upgrade to a new schema.sql applies it on the next update even when no row changed (a table added since)", async () => {
        const rows = { "/upgrade/a.jpg": url("upgrade/a") };
        await provider.create({ ...base, shard: "s-upgrade", rows });
        await workers.db.prepare("DROP TABLE IF EXISTS webhook_image_leases").bind().run();
        const tableCount = async () => (await workers.db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'webhook_image_leases'").bind().first<number>("n"));
        assert.equal(await tableCount(), 0);
        // A state written before schemaVersion existed, and one of an older schema: both apply the current schema.
        for (const olds of [{ ...base, shard: "s-upgrade", rows }, { ...base, shard: "s-upgrade", rows, schemaVersion: "0123456789abcdef" }]) {
            const news = { ...base, shard: "s-upgrade", rows, schemaVersion: schemaVersion() };
            assert.deepEqual(diffRowsInputs(olds, news), { changes: true, replaces: [], deleteBeforeReplace: false });
            emulator.resetCounters();
            const result = await provider.update!("id", olds, news);
            assert.equal(d1Requests(), 1);
            assert.equal(result.outs.schemaVersion, schemaVersion());
            assert.equal(await tableCount(), 1);
            await workers.db.prepare("DROP TABLE webhook_image_leases").bind().run();
        }
        // The same version again: nothing to write.
        emulator.resetCounters();
        const same = { ...base, shard: "s-upgrade", rows, schemaVersion: schemaVersion() };
        assert.equal(diffRowsInputs(same, { ...same }).changes, false);
        await provider.update!("id", same, { ...same });
        assert.equal(emulator.counters.requests, 0);
        await provider.create({ ...base, shard: "s-upgrade", rows });
        assert.deepEqual(await ownedBy("s-upgrade"), rows);
    });

    it("RedirectRows declares the digest of the schema.sql it ships with", () => {
        const digest = schemaVersion();
        assert.match(digest, /^[0-9a-f]{16}$/);
        assert.notEqual(schemaVersion([...schemaStatements(), "CREATE TABLE IF NOT EXISTS t (x)"]), digest);
        assert.equal(schemaVersion(schemaStatements(fs.readFileSync(SCHEMA_PATH, "utf8") + "\n-- a comment only\n")), digest, "comments do not count");
    });

    it("writes a shard of 1,000 rows in one request within D1's limits, and deletes it", async () => {
        const rows = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`/bulk/${i}.jpg`, url(`bulk-${i}`)]));
        emulator.resetCounters();
        await provider.create({ ...base, shard: "layer-rows-b01", rows });
        assert.equal(d1Requests(), 1);
        assert.equal(Object.keys(await ownedBy("layer-rows-b01")).length, 1000);
        assert.equal(await redirectOf("/bulk/999.jpg"), url("bulk-999"));
        await provider.delete!("id", { ...base, shard: "layer-rows-b01", rows, rowCount: 1000 });
        assert.deepEqual(await ownedBy("layer-rows-b01"), {});
        assert.equal(await redirectOf("/bulk/999.jpg"), null);
    });

    it("delete leaves rows that moved to another shard (a split creates the new shards before deleting the old)", async () => {
        const rows = { "/move/1.jpg": url("m1"), "/move/2.jpg": url("m2") };
        await provider.create({ ...base, shard: "old", rows });
        await provider.create({ ...base, shard: "new", rows: { "/move/2.jpg": url("m2") } });
        await provider.delete!("id", { ...base, shard: "old", rows, rowCount: 2 });
        assert.equal(await redirectOf("/move/1.jpg"), null);
        assert.equal(await redirectOf("/move/2.jpg"), url("m2"));
    });

    it("delete of rows already gone is fine", async () => {
        await provider.delete!("id", { ...base, shard: "never-written", rows: { "/x.jpg": url("x") }, rowCount: 1 });
    });

    it("read returns the rows the shard owns in D1 (refresh sees out-of-band deletes)", async () => {
        await workers.db.prepare("DELETE FROM redirects WHERE path = ?1").bind("/f.webp").run();
        const read = await provider.read!("id", { ...base, shard: "layer-rows-all", rows: {}, rowCount: 0 });
        assert.deepEqual(read.props.rows, { "/a.jpg": url("a"), "/b/c%20d.png": url("b/v2") });
        assert.equal(read.props.rowCount, 2);
    });

    it("surfaces D1 errors with their code 7500 and without the token", async () => {
        const d1 = new D1Client({ accountId: emulator.accountId, databaseId: DATABASE_ID, apiToken: "test-token", apiBaseUrl: emulator.baseUrl });
        await assert.rejects(d1.query([{ sql: "SELECT * FROM no_such_table", params: [] }]), (e: unknown) => {
            assert.ok(e instanceof CloudflareApiError);
            assert.ok(e.hasCode(7500));
            assert.equal(e.status, 400);
            assert.match(e.message, /no such table: no_such_table: SQLITE_ERROR/);
            return true;
        });
        await assert.rejects(provider.create({ ...base, databaseId: "missing-db", shard: "s", rows: { "/a.jpg": url("a") } }), (e: Error) => {
            assert.match(e.message, /^RedirectRows "s" \(D1 database missing-db\): .*code 7500.*no such database/);
            assert.doesNotMatch(e.message, /test-token/);
            return true;
        });
    });

    describe("check and diff (pure)", () => {
        it("names each bad property with its fix", () => {
            const rows = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`/r/${i}`, url(String(i))]));
            const failures = checkRowsInputs({ accountId: "", databaseId: "d", shard: "s", rows: { ...rows, "/a//b/": "ftp://x" } });
            const reasons = failures.map((f) => `${f.property}: ${f.reason}`).join("\n");
            assert.match(reasons, /accountId: accountId is empty/);
            assert.match(reasons, /rows: rows has 1002 entries, over 1000/);
            assert.match(reasons, /rows key "\/a\/\/b\/" is not a normalised path/);
            assert.match(reasons, /not an absolute http\(s\) delivery URL/);
        });

        it("accepts host/path keys and unknown values during preview", () => {
            const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
            assert.deepEqual(checkRowsInputs({ accountId: "a", databaseId: unknown, shard: "s", rows: { "img.example.com/a.jpg": url("a") } }), []);
            assert.deepEqual(checkRowsInputs({ accountId: "a", databaseId: "d", shard: "s", rows: unknown }), []);
        });

        it("replaces on a new database, account or shard and updates on rows or token", () => {
            const olds = { accountId: "a", databaseId: "d", shard: "s", rows: { "/a": "u" }, rowCount: 1 };
            assert.deepEqual(diffRowsInputs(olds, { ...olds, rowCount: undefined }), { changes: false, replaces: [], deleteBeforeReplace: false });
            assert.deepEqual(diffRowsInputs(olds, { ...olds, databaseId: "d2" }).replaces, ["databaseId"]);
            assert.equal(diffRowsInputs(olds, { ...olds, rows: { "/a": "v" } }).changes, true);
            assert.equal(diffRowsInputs(olds, { ...olds, apiToken: "t" }).changes, true);
        });
    });
});
