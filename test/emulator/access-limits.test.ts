// Auth, routing, lists, the rate limits of the account API and the batch host, over raw HTTP.
import * as assert from "node:assert/strict";
import { startEmulator, type Emulator } from "./index";
import { pngBytes } from "./fixtures";
import { call, errorCode, uploadForm } from "./http-helpers";

const IMAGES = "/accounts/acc-test/images";

async function seed(emu: Emulator, n: number, creator?: (i: number) => string | undefined): Promise<void> {
  for (let i = 0; i < n; i++) {
    const c = creator?.(i);
    const a = await call(emu.baseUrl, "POST", `${IMAGES}/v1`, { form: uploadForm({ id: `img/${i}`, ...(c ? { creator: c } : {}) }, { bytes: pngBytes(i) }) });
    assert.equal(a.status, 200);
  }
}

describe("emulator access, routing and lists", () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ tokens: ["test-token", "other-token"] });
    await seed(emu, 25, (i) => (i % 5 === 0 ? "alice" : undefined));
  });
  after(() => emu.close());

  it("answers a missing, malformed or unknown token with 401 / 10000, and a revoked token too", async () => {
    for (const headers of [{}, { authorization: "Basic abc" }, { authorization: "Bearer nope" }] as Record<string, string>[]) {
      const a = await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`, { token: "", headers });
      assert.equal(a.status, 401, JSON.stringify(headers));
      assert.equal(errorCode(a), 10000);
    }
    emu.addToken("rotating");
    assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`, { token: "rotating" })).status, 200);
    emu.revokeToken("rotating");
    assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`, { token: "rotating" })).status, 401);
  });

  it("answers another account with 403 / 9109 and unknown routes with 404 / 7003", async () => {
    const other = await call(emu.baseUrl, "GET", "/accounts/acc-other/images/v1/stats");
    assert.equal(other.status, 403);
    assert.equal(errorCode(other), 9109);
    for (const [method, path] of [["GET", "/accounts/acc-test/workers/scripts"], ["PUT", `${IMAGES}/v1/img%2F1`], ["GET", "/nope"], ["POST", `${IMAGES}/v2`]]) {
      const a = await call(emu.baseUrl, method, path);
      assert.equal(a.status, 404, `${method} ${path}`);
      assert.deepEqual(a.body.errors, [{ code: 7003, message: "No route for the URI" }]);
    }
    const missing = await call(emu.baseUrl, "GET", `${IMAGES}/v1/img%2F999`);
    assert.deepEqual([missing.status, missing.body.errors], [404, [{ code: 5404, message: "Image not found" }]]);
    assert.equal((await call(emu.baseUrl, "DELETE", `${IMAGES}/v1/img%2F999`)).status, 404);
  });

  it("pages the deprecated v1 list by page number with result_info", async () => {
    const p3 = await call(emu.baseUrl, "GET", `${IMAGES}/v1?page=3&per_page=10`);
    assert.equal(p3.body.result.images.length, 5);
    assert.deepEqual(p3.body.result_info, { page: 3, per_page: 10, count: 5, total_count: 25 });
    assert.equal(p3.body.result.images[4].id, "img/0");
  });

  it("validates v2 per_page (10..10000), sort_order and continuation_token, and rejects metadata filters it does not emulate", async () => {
    for (const q of ["per_page=9", "per_page=10001", "per_page=abc", "sort_order=up", "continuation_token=forged", "meta.sku[eq]=1"]) {
      const a = await call(emu.baseUrl, "GET", `${IMAGES}/v2?${q}`);
      assert.equal(a.status, 400, q);
      assert.equal(errorCode(a), 5400, q);
    }
  });

  it("filters v2 by creator (an empty creator lists images without one), also across pages", async () => {
    const alice = await call(emu.baseUrl, "GET", `${IMAGES}/v2?creator=alice&per_page=10`);
    assert.deepEqual(alice.body.result.images.map((i: { id: string }) => i.id), ["img/20", "img/15", "img/10", "img/5", "img/0"]);
    const none = await call(emu.baseUrl, "GET", `${IMAGES}/v2?creator=&per_page=10`);
    assert.equal(none.body.result.images.length, 10);
    const next = await call(emu.baseUrl, "GET", `${IMAGES}/v2?per_page=10&continuation_token=${none.body.result.continuation_token}`);
    assert.equal(next.body.result.images.length, 10);
    assert.ok(next.body.result.images.every((i: { creator: string | null }) => i.creator === null));
  });

  it("keeps a v2 listing consistent when images are deleted between pages (the token is a position, not an offset)", async () => {
    const first = await call(emu.baseUrl, "GET", `${IMAGES}/v2?per_page=10`);
    const ids: string[] = first.body.result.images.map((i: { id: string }) => i.id);
    const removed = emu.images.get(ids[0]);
    emu.images.delete(ids[0]);
    const second = await call(emu.baseUrl, "GET", `${IMAGES}/v2?per_page=10&continuation_token=${first.body.result.continuation_token}`);
    assert.equal(second.body.result.images[0].id, "img/14");
    if (removed) emu.images.set(removed.id, removed);
  });
});

describe("emulator rate limits", () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ tokens: ["test-token", "other-token"], rateLimit: { requests: 5, windowSeconds: 60 }, batch: { requestsPerSecond: 4 } });
  });
  after(() => emu.close());

  it("answers over the per-token budget with 429, code 971 and an integer Retry-After; other tokens are unaffected", async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 7; i++) {
      const a = await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`);
      statuses.push(a.status);
      if (a.status === 429) {
        assert.deepEqual(a.body.errors, [{ code: 971, message: "Please wait and consider throttling your request speed" }]);
        retryAfter = a.headers.get("retry-after");
      }
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert.match(retryAfter ?? "", /^\d+$/);
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60);
    assert.equal(emu.counters.http429, 2);
    assert.equal(emu.counters.maxRequestsInWindow, 7, "the peak counts every request the token sent in the window");
    assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`, { token: "other-token" })).status, 200);
    assert.equal(emu.counters.byRoute["GET images/v1/stats 429"], 2);
  });

  it("takes a new budget with setRateLimit, and resetCounters clears the peak", async () => {
    emu.setRateLimit({ requests: 100, windowSeconds: 60 });
    emu.resetCounters();
    assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`)).status, 200);
    assert.equal(emu.counters.maxRequestsInWindow, 1);
    assert.equal(emu.counters.requests, 1);
  });

  it("limits the batch host per batch token, apart from the account budget, and rejects unknown and expired batch tokens", async () => {
    emu.setRateLimit({ requests: 100, windowSeconds: 60 });
    const issued = await call(emu.baseUrl, "GET", `${IMAGES}/v1/batch_token`);
    assert.equal(issued.status, 200);
    const token: string = issued.body.result.token;
    const answers = await Promise.all(Array.from({ length: 7 }, () => call(emu.batchBaseUrl, "GET", "/images/v2", { token })));
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429, 429]);
    const limited = answers.find((a) => a.status === 429);
    assert.equal(limited?.headers.get("retry-after"), "1");
    assert.equal(errorCode(limited!), 971);
    assert.equal(emu.counters.byRoute["batch GET images/v2 200"], 4);
    assert.equal(emu.counters.maxBatchRequestsInSecond, 7);

    const other = (await call(emu.baseUrl, "GET", `${IMAGES}/v1/batch_token`)).body.result.token;
    assert.equal((await call(emu.batchBaseUrl, "GET", "/images/v2", { token: other })).status, 200, "each batch token has its own budget");

    const unknown = await call(emu.batchBaseUrl, "GET", "/images/v2", { token: "test-token" });
    assert.deepEqual([unknown.status, errorCode(unknown)], [401, 10000], "account tokens are not batch tokens");
    emu.batchTokens.set(other, Date.now() - 1);
    const expired = await call(emu.batchBaseUrl, "GET", "/images/v2", { token: other });
    assert.deepEqual([expired.status, errorCode(expired)], [401, 10000]);
    assert.match(expired.body.errors[0].message, /expired/);
  });

  it("serves uploads, details, edits and deletes on the batch host, and only the documented batch routes", async () => {
    const token: string = (await call(emu.baseUrl, "GET", `${IMAGES}/v1/batch_token`)).body.result.token;
    const up = await call(emu.batchBaseUrl, "POST", "/images/v1", { token, form: uploadForm({ id: "batch/1" }, { bytes: pngBytes(1) }) });
    assert.equal(up.status, 200);
    assert.equal((await call(emu.batchBaseUrl, "GET", "/images/v1/batch%2F1", { token })).body.result.id, "batch/1");
    assert.deepEqual((await call(emu.batchBaseUrl, "PATCH", "/images/v1/batch%2F1", { token, json: { metadata: { a: 1 } } })).body.result.meta, { a: 1 });
    const fresh: string = (await call(emu.baseUrl, "GET", `${IMAGES}/v1/batch_token`)).body.result.token; // 4 requests/s per token here
    assert.equal((await call(emu.batchBaseUrl, "DELETE", "/images/v1/batch%2F1", { token: fresh })).status, 200);
    const stats = await call(emu.batchBaseUrl, "GET", "/images/v1/stats", { token: fresh });
    assert.deepEqual([stats.status, errorCode(stats)], [404, 7003]);
  });
});

describe("emulator account rate limit: strict by default, on an injected clock", () => {
  let emu: Emulator;
  let now = 1_000_000;
  const account = { token: "acct-token" };
  before(async () => {
    emu = await startEmulator({
      tokens: ["test-token", "other-token", account.token], tokenGrants: { [account.token]: { owner: "account" } },
      rateLimit: { requests: 3, windowSeconds: 300 }, rateLimitClock: () => now,
    });
    await seed(emu, 1);
  });
  after(() => emu.close());

  /** Every API-host route, each as the token may call it. */
  const everyRoute: [method: string, path: string, opts?: Parameters<typeof call>[3]][] = [
    ["GET", `${IMAGES}/v1/stats`],
    ["GET", `${IMAGES}/v1`],
    ["POST", `${IMAGES}/v1`, { form: uploadForm({ id: "blocked/1" }, { bytes: pngBytes(7) }) }],
    ["GET", `${IMAGES}/v1/img%2F0`],
    ["GET", `${IMAGES}/v1/img%2F0/blob`],
    ["PATCH", `${IMAGES}/v1/img%2F0`, { json: { metadata: { a: 1 } } }],
    ["DELETE", `${IMAGES}/v1/img%2F0`],
    ["GET", `${IMAGES}/v1/batch_token`],
    ["GET", `${IMAGES}/v2`],
    ["GET", "/user/tokens/verify"],
    ["GET", "/user/tokens/permission_groups"],
    ["GET", "/accounts/acc-test/tokens/permission_groups"],
    ["GET", "/accounts/acc-test/tokens/verify", { token: account.token }],
    ["POST", "/accounts/acc-test/d1/database/db-1/query", { json: { sql: "SELECT 1" } }],
    ["POST", "/accounts/acc-test/d1/database/db-1/raw", { json: { sql: "SELECT 1" } }],
  ];

  it("blocks the token for the whole window from the request that goes over: every route 429 / 971 with Retry-After until the block ends", async () => {
    const batchToken: string = (await call(emu.baseUrl, "GET", `${IMAGES}/v1/batch_token`)).body.result.token;
    emu.setRateLimit({ requests: 3, windowSeconds: 300 }); // the seed and the batch token above used up budget
    emu.resetCounters();
    const accountTokenOver = async () => {
      for (let i = 0; i < 4; i++) await call(emu.baseUrl, "GET", "/accounts/acc-test/tokens/verify", account);
    };
    await accountTokenOver();
    for (let i = 0; i < 3; i++) assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`)).status, 200);
    const over = await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`);
    assert.deepEqual([over.status, over.headers.get("retry-after")], [429, "300"]);
    assert.deepEqual(over.body.errors, [{ code: 971, message: "Please wait and consider throttling your request speed" }]);

    now += 100_000;
    for (const [method, path, opts] of everyRoute) {
      const a = await call(emu.baseUrl, method, path, opts);
      assert.deepEqual([a.status, errorCode(a), a.headers.get("retry-after")], [429, 971, "200"], `${method} ${path}`);
    }
    now += 199_001;
    assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`)).headers.get("retry-after"), "1", "999 ms left: rounded up to 1 s");
    assert.ok(emu.images.has("img/0") && !emu.images.has("blocked/1"), "no blocked write took effect");
    assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`, { token: "other-token" })).status, 200, "another token keeps its budget");
    assert.equal((await call(emu.batchBaseUrl, "GET", "/images/v2", { token: batchToken })).status, 200, "the batch host is not blocked");
    assert.equal(emu.counters.http429, 1 + 1 + everyRoute.length + 1);
    assert.equal(emu.counters.rateLimitBlocks, 2);
    assert.deepEqual(emu.rateLimitBlocks.map((b) => [b.until - b.from]), [[300_000], [300_000]]);
  });

  it("after the block the count starts afresh: a whole budget, then a new block", async () => {
    now += 1000;
    for (let i = 0; i < 3; i++) assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`)).status, 200, `request ${i + 1} after the block`);
    const over = await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`);
    assert.deepEqual([over.status, over.headers.get("retry-after")], [429, "300"]);
  });

  it("lenient mode accepts a request again as soon as the oldest one leaves the window, with no block", async () => {
    emu.setRateLimit({ requests: 2, windowSeconds: 300, mode: "lenient" });
    emu.resetCounters();
    for (let i = 0; i < 2; i++) {
      assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`)).status, 200);
      now += 10_000;
    }
    const over = await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`);
    assert.deepEqual([over.status, errorCode(over), over.headers.get("retry-after")], [429, 971, "280"]);
    now += 280_000;
    assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/stats`)).status, 200);
    assert.equal(emu.counters.rateLimitBlocks, 0);
  });

  it("refuses a rate limit mode it does not know, naming the key", () => {
    assert.throws(() => emu.setRateLimit({ requests: 2, windowSeconds: 1, mode: "soft" as never }), /rateLimit\.mode must be "strict" or "lenient"/);
  });
});
