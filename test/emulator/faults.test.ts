// Fault injection: shares with a fixed seed, dropped connections, writes that take effect before the fault.
import * as assert from "node:assert/strict";
import { startEmulator, type Emulator } from "./index";
import { pngBytes } from "./fixtures";
import { call, uploadForm } from "./http-helpers";
import { afterWriteFault, beforeFault, delayMs, seededRandom, validateFaults } from "./faults";

const IMAGES = "/accounts/acc-test/images";

/** A request's outcome: its status, or "dropped" when the connection closed without an answer. */
async function outcome(p: Promise<{ status: number }>): Promise<number | "dropped"> {
  try {
    return (await p).status;
  } catch (err) {
    assert.match(String((err as Error).cause ?? err), /socket|closed|reset|ECONNRESET|terminated/i);
    return "dropped";
  }
}

describe("emulator faults (pure decisions)", () => {
  it("splits a seeded stream into drops, 500/502/524 errors and passes by the configured shares", () => {
    const random = seededRandom(42);
    const seen: Record<string, number> = {};
    for (let i = 0; i < 10_000; i++) {
      const a = beforeFault({ errorRate: 0.2, dropRate: 0.1 }, random);
      const key = a.kind === "error" ? String(a.status) : a.kind;
      seen[key] = (seen[key] ?? 0) + 1;
    }
    assert.ok(Math.abs(seen.drop - 1000) < 150, `drops ${seen.drop}`);
    for (const s of ["500", "502", "524"]) assert.ok(Math.abs(seen[s] - 667) < 120, `${s}: ${seen[s]}`);
    assert.ok(Math.abs(seen.none - 7000) < 250, `passes ${seen.none}`);
  });

  it("adds uniform latency within bounds plus spikes, and only applies after-write faults at their rate", () => {
    const random = seededRandom(7);
    for (let i = 0; i < 200; i++) {
      const ms = delayMs({ latencyMs: [10, 20] }, random);
      assert.ok(ms >= 10 && ms <= 20);
    }
    const spiked = Array.from({ length: 1000 }, () => delayMs({ spikeRate: 0.1, spikeMs: 5000 }, random)).filter((ms) => ms === 5000).length;
    assert.ok(spiked > 60 && spiked < 140, `spikes ${spiked}`);
    assert.equal(afterWriteFault({}, random).kind, "none");
    const kinds = Array.from({ length: 1000 }, () => afterWriteFault({ afterWriteRate: 1, afterWriteKind: "drop" }, random).kind);
    assert.ok(kinds.every((k) => k === "drop"));
  });

  it("rejects rates outside 0..1 naming the key", () => {
    assert.throws(() => validateFaults({ errorRate: 1.5 }), /faults\.errorRate/);
    assert.throws(() => validateFaults({ errorRate: 0.6, dropRate: 0.6 }), /at most 1/);
    assert.throws(() => validateFaults({ latencyMs: [20, 10] }), /faults\.latencyMs/);
  });
});

describe("emulator faults (over HTTP)", () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ rateLimit: { requests: 100_000, windowSeconds: 300 } });
    await call(emu.baseUrl, "POST", `${IMAGES}/v1`, { form: uploadForm({ id: "f/1" }, { bytes: pngBytes(1) }) });
  });
  after(() => emu.close());
  afterEach(() => {
    emu.setFaults(undefined);
    emu.resetCounters();
  });

  it("answers a seeded share of requests with 500/502 envelopes (code 10001) and 524 pages, and counts them", async () => {
    emu.setFaults({ errorRate: 0.3, seed: 1 });
    const answers = [];
    for (let i = 0; i < 200; i++) answers.push(await call(emu.baseUrl, "GET", `${IMAGES}/v1/f%2F1`));
    const faulty = answers.filter((a) => a.status >= 500);
    assert.ok(faulty.length > 35 && faulty.length < 85, `faults ${faulty.length} of 200`);
    assert.equal(emu.counters.faultsInjected, faulty.length);
    assert.equal(answers.filter((a) => a.status === 200).length, 200 - faulty.length);
    for (const a of faulty) {
      if (a.status === 524) assert.match(String(a.body), /524/);
      else assert.deepEqual([a.body.success, a.body.errors[0].code, a.body.result], [false, 10001, null]);
    }
    assert.deepEqual(new Set(faulty.map((a) => a.status)), new Set([500, 502, 524]));
  });

  it("destroys a seeded share of connections without an answer, before the upload takes effect", async () => {
    emu.setFaults({ dropRate: 0.5, seed: 3 });
    const results: (number | "dropped")[] = [];
    for (let i = 0; i < 40; i++) {
      results.push(await outcome(call(emu.baseUrl, "POST", `${IMAGES}/v1`, { form: uploadForm({ id: `drop/${i}` }, { bytes: pngBytes(i) }) })));
    }
    const dropped = results.filter((r) => r === "dropped").length;
    assert.ok(dropped > 10 && dropped < 30, `dropped ${dropped} of 40`);
    assert.equal(emu.counters.dropped, dropped);
    assert.equal(emu.counters.uploads, 40 - dropped, "a request dropped before handling stores nothing");
    results.forEach((r, i) => assert.equal(emu.images.has(`drop/${i}`), r === 200));
  });

  it("with routes: writes, leaves reads alone", async () => {
    emu.setFaults({ errorRate: 1, routes: "writes" });
    assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/f%2F1`)).status, 200);
    assert.ok((await call(emu.baseUrl, "PATCH", `${IMAGES}/v1/f%2F1`, { json: { metadata: {} } })).status >= 500);
  });

  it("can store the image and then drop the answer, so a retry meets 5409 for an image that exists", async () => {
    emu.setFaults({ afterWriteRate: 1, afterWriteKind: "drop" });
    const first = await outcome(call(emu.baseUrl, "POST", `${IMAGES}/v1`, { form: uploadForm({ id: "after/1" }, { bytes: pngBytes(5) }) }));
    assert.equal(first, "dropped");
    assert.ok(emu.images.has("after/1"), "the write took effect before the connection dropped");
    assert.deepEqual([emu.counters.uploads, emu.counters.afterWriteFaults, emu.counters.dropped], [1, 1, 1]);
    emu.setFaults(undefined);
    const retry = await call(emu.baseUrl, "POST", `${IMAGES}/v1`, { form: uploadForm({ id: "after/1" }, { bytes: pngBytes(5) }) });
    assert.deepEqual([retry.status, retry.body.errors[0].code], [409, 5409]);
  });

  it("can apply a delete and answer 5xx, so a retry meets 5404", async () => {
    emu.setFaults({ afterWriteRate: 1, afterWriteKind: "error" });
    const first = await call(emu.baseUrl, "DELETE", `${IMAGES}/v1/after%2F1`);
    assert.ok([500, 502, 524].includes(first.status));
    assert.ok(!emu.images.has("after/1"));
    emu.setFaults(undefined);
    assert.equal((await call(emu.baseUrl, "DELETE", `${IMAGES}/v1/after%2F1`)).status, 404);
  });

  it("does not inject after-write faults on failed writes or reads", async () => {
    emu.setFaults({ afterWriteRate: 1 });
    assert.equal((await call(emu.baseUrl, "GET", `${IMAGES}/v1/f%2F1`)).status, 200);
    assert.equal((await call(emu.baseUrl, "DELETE", `${IMAGES}/v1/missing`)).status, 404);
    assert.equal(emu.counters.faultsInjected, 0);
  });
});
