// The D1 HTTP query API route, with an in-test backend: body shapes, limits, 7500 errors, /raw.
import * as assert from "node:assert/strict";
import { startEmulator, type D1Backend, type D1Statement, type Emulator } from "./index";
import { call } from "./http-helpers";

const QUERY = "/accounts/acc-test/d1/database/db-1/query";

/** Answers `SELECT` with one row per param, throws for SQL containing "boom" like sqlite would. */
class FakeD1 implements D1Backend {
  calls: { databaseId: string; statements: D1Statement[] }[] = [];
  async query(databaseId: string, statements: D1Statement[]) {
    this.calls.push({ databaseId, statements });
    return statements.map((s) => {
      if (s.sql.includes("boom")) throw new Error('near "boom": syntax error');
      return { results: s.params.map((p, i) => ({ i, p })), success: true as const, meta: { changes: 0, rows_read: s.params.length } };
    });
  }
}

describe("emulator D1 query API", () => {
  let emu: Emulator;
  let d1: FakeD1;
  before(async () => {
    d1 = new FakeD1();
    emu = await startEmulator({ d1 });
  });
  after(() => emu.close());
  beforeEach(() => (d1.calls = []));

  it("runs {sql, params} as one statement and answers one result per statement", async () => {
    const a = await call(emu.baseUrl, "POST", QUERY, { json: { sql: "SELECT ?", params: ["x", "y"] } });
    assert.equal(a.status, 200);
    assert.deepEqual(a.body.result, [{ results: [{ i: 0, p: "x" }, { i: 1, p: "y" }], success: true, meta: { changes: 0, rows_read: 2 } }]);
    assert.deepEqual(d1.calls, [{ databaseId: "db-1", statements: [{ sql: "SELECT ?", params: ["x", "y"] }] }]);
  });

  it("passes a batch to the backend as given, defaulting missing params to []", async () => {
    const a = await call(emu.baseUrl, "POST", QUERY, { json: { batch: [{ sql: "SELECT 1" }, { sql: "SELECT ?", params: [1] }] } });
    assert.equal(a.body.result.length, 2);
    assert.deepEqual(d1.calls[0].statements, [{ sql: "SELECT 1", params: [] }, { sql: "SELECT ?", params: [1] }]);
  });

  it("answers /raw with columns and rows", async () => {
    const a = await call(emu.baseUrl, "POST", QUERY.replace("/query", "/raw"), { json: { sql: "SELECT ?", params: ["x"] } });
    assert.deepEqual(a.body.result[0].results, { columns: ["i", "p"], rows: [[0, "x"]] });
  });

  it("turns a backend error into HTTP 400, code 7500, '<message>: SQLITE_ERROR'", async () => {
    const a = await call(emu.baseUrl, "POST", QUERY, { json: { sql: "boom" } });
    assert.equal(a.status, 400);
    assert.deepEqual(a.body.errors, [{ code: 7500, message: 'near "boom": syntax error: SQLITE_ERROR' }]);
    assert.equal(a.body.result, null);
  });

  it("enforces 100 bound parameters and 100,000 bytes per statement before the backend runs", async () => {
    const params = Array.from({ length: 101 }, (_, i) => i);
    const tooMany = await call(emu.baseUrl, "POST", QUERY, { json: { batch: [{ sql: "SELECT 1" }, { sql: "SELECT ?", params }] } });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.errors[0].code, 7500);
    assert.match(tooMany.body.errors[0].message, /statement 2 binds 101 parameters, D1 allows 100/);
    const tooLong = await call(emu.baseUrl, "POST", QUERY, { json: { sql: `SELECT '${"x".repeat(100_000)}'` } });
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.body.errors[0].message, /100009 bytes, D1 allows 100000/);
    const fits = await call(emu.baseUrl, "POST", QUERY, { json: { sql: "SELECT ?", params: params.slice(1) } });
    assert.equal(fits.status, 200);
    assert.equal(d1.calls.length, 1, "only the statement within the limits reached the backend");
  });

  it("rejects malformed bodies with 400 / 7500", async () => {
    for (const json of [{}, { sql: "" }, { batch: [] }, { sql: 1 }]) {
      const a = await call(emu.baseUrl, "POST", QUERY, { json });
      assert.deepEqual([a.status, a.body.errors[0].code], [400, 7500], JSON.stringify(json));
    }
  });

  it("requires the account token like every other route", async () => {
    const a = await call(emu.baseUrl, "POST", QUERY, { token: "nope", json: { sql: "SELECT 1" } });
    assert.deepEqual([a.status, a.body.errors[0].code], [401, 10000]);
  });

  it("answers 404 / 7003 when no D1 backend is configured", async () => {
    const bare = await startEmulator();
    try {
      const a = await call(bare.baseUrl, "POST", QUERY, { json: { sql: "SELECT 1" } });
      assert.deepEqual([a.status, a.body.errors], [404, [{ code: 7003, message: "No route for the URI" }]]);
    } finally {
      await bare.close();
    }
  });
});
