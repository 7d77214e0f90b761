import { strict as assert } from "assert";
import { startEmulator, Emulator } from "../emulator";
import { miniflareD1Backend } from "../emulator/d1-miniflare";
import { DesiredResource, EngineDriver, secret } from "../host/engine-driver";
import { REDIRECT_ROWS_SECRET_OUTPUTS } from "../../provider/redirect-rows";
import { DATABASE_ID, RedirectWorkers, serializedRowsProvider, startRedirectWorkers } from "./fixtures";

const TOKEN = "tok-config-d1-7c2e90";
const TYPE = "pulumi-nodejs:dynamic/sourcing-kit:RedirectRows";
const url = (id: string): string => `https://imagedelivery.net/hash-test/${id}/public`;

describe("RedirectRows in the real dynamic provider host", function () {
    let workers: RedirectWorkers;
    let emulator: Emulator;
    let driver: EngineDriver;
    let providerText: string;

    const shard = (name: string, rows: Record<string, string>): DesiredResource => ({
        urn: `urn:pulumi:host-test::sourcing-kit::${TYPE}::${name}`,
        additionalSecretOutputs: REDIRECT_ROWS_SECRET_OUTPUTS,
        inputs: { __provider: providerText, accountId: emulator.accountId, databaseId: DATABASE_ID, shard: name, rows, apiBaseUrl: emulator.baseUrl },
    });
    const table = async (): Promise<Record<string, string>> => {
        const { results } = await (workers.db.prepare("SELECT path, shard FROM redirects ORDER BY path").bind() as unknown as
            { all(): Promise<{ results: { path: string; shard: string }[] }> }).all();
        return Object.fromEntries(results.map((r) => [r.path, r.shard]));
    };

    const redirectTarget = async (path: string): Promise<string | null> => {
        const res = await workers.fetch("reader", `http://old-cdn.test${path}`);
        return res.status === 301 ? res.headers.get("location") : null;
    };

    before(async () => {
        providerText = await serializedRowsProvider();
        workers = await startRedirectWorkers([{ name: "reader", bindings: { FALLBACK: "404", CACHE_TTL: "0", NEGATIVE_CACHE_TTL: "0" } }], { applySchema: false });
        emulator = await startEmulator({ tokens: [TOKEN], d1: miniflareD1Backend({ [DATABASE_ID]: workers.db }) });
        driver = await EngineDriver.start({ "cloudflare:apiToken": secret(TOKEN) });
    });

    after(async () => {
        await driver?.host.kill();
        await emulator?.close();
        await workers?.dispose();
    });

    it("serializes to a thin shim", () => {
        assert.ok(providerText.length < 8000, `${providerText.length} bytes`);
    });

    it("goes through up, up again (no change), a row change, refresh and destroy with the configured token", async () => {
        const v1 = [shard("rows-b0", { "/a.jpg": url("a"), "/b.jpg": url("b") }), shard("rows-b1", { "/c.jpg": url("c") })];
        let run = await driver.up(v1);
        assert.deepEqual(run.errors, []);
        assert.deepEqual(run.counts, { create: 2 });
        assert.deepEqual(await table(), { "/a.jpg": "rows-b0", "/b.jpg": "rows-b0", "/c.jpg": "rows-b1" });

        emulator.resetCounters();
        run = await driver.up(v1);
        assert.deepEqual(run.counts, { same: 2 });
        assert.equal(emulator.counters.requests, 0);

        run = await driver.up([shard("rows-b0", { "/a.jpg": url("a2"), "/d.jpg": url("d") }), v1[1]]);
        assert.deepEqual(run.counts, { update: 1, same: 1 });
        assert.deepEqual(await table(), { "/a.jpg": "rows-b0", "/c.jpg": "rows-b1", "/d.jpg": "rows-b0" });

        await workers.db.prepare("DELETE FROM redirects WHERE path = ?1").bind("/c.jpg").run();
        await driver.refresh();
        assert.deepEqual(driver.state.get(v1[1].urn)?.outputs.rows, {});
        const v3 = [shard("rows-b0", { "/a.jpg": url("a2"), "/d.jpg": url("d") }), v1[1]];
        run = await driver.up(v3);
        assert.deepEqual(run.counts, { update: 1, same: 1 }, "the refreshed shard writes its missing row back");
        assert.equal(await redirectTarget("/c.jpg"), url("c"));

        assert.doesNotMatch(driver.plainTextCheckpoint(), new RegExp(TOKEN));
        assert.doesNotMatch(driver.host.output(), new RegExp(TOKEN));
        await driver.destroy();
        assert.deepEqual(await table(), {});
    });
});
