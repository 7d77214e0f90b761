// Table-driven tests of the emulator's pure parts: rate limits (strict and lenient), format sniffing, custom IDs, D1 limits, bracketed fields.
import * as assert from "node:assert/strict";
import { blockedMs, TokenRateLimiter } from "./rate-limiter";
import { dimensionProblem, sniffImageFormat } from "./image-format";
import { customIdProblem, generateImageId, isUuid } from "./image-id";
import { parseD1Body } from "./d1-route";
import { bracketedObject } from "./multipart";
import { gifBytes, heicBytes, jpegBytes, pngBytes, pngHeaderOnly, svgBytes, webpBytes } from "./fixtures";

describe("emulator rate limiter, strict (the default: Cloudflare's block)", () => {
  it("blocks the key for a whole window from the request that goes over, whatever it sends meanwhile", () => {
    const l = new TokenRateLimiter({ requests: 3, windowSeconds: 10 });
    assert.deepEqual([0, 1000, 2000].map((t) => l.take("t", t).allowed), [true, true, true]);
    assert.deepEqual(l.take("t", 2500), { allowed: false, retryAfterSeconds: 10 }, "the block runs from 2,500 to 12,500");
    assert.deepEqual(l.take("t", 10_000), { allowed: false, retryAfterSeconds: 3 }, "still blocked though the stamp at 0 has left the window");
    assert.deepEqual(l.take("t", 12_499), { allowed: false, retryAfterSeconds: 1 }, "Retry-After rounds up, at least 1");
    assert.deepEqual(l.blocks, [{ key: "t", from: 2500, until: 12_500 }], "requests sent while blocked do not lengthen the block");
  });

  it("starts the count afresh once the block is over", () => {
    const l = new TokenRateLimiter({ requests: 3, windowSeconds: 10 });
    for (const t of [0, 1000, 2000, 2500]) l.take("t", t);
    assert.deepEqual([12_500, 12_600, 12_700].map((t) => l.take("t", t).allowed), [true, true, true],
      "a full budget, though 2,000 is within a window of 12,500");
    assert.deepEqual(l.take("t", 12_800), { allowed: false, retryAfterSeconds: 10 });
    assert.equal(l.blocks.length, 2);
  });

  it("blocks per key: another key keeps its budget", () => {
    const l = new TokenRateLimiter({ requests: 1, windowSeconds: 60 });
    l.take("a", 0);
    assert.equal(l.take("a", 1).allowed, false);
    assert.equal(l.take("b", 2).allowed, true);
  });

  it("setBudget ends a block and every count; resetStats clears the record of blocks, not the block", () => {
    const l = new TokenRateLimiter({ requests: 1, windowSeconds: 60 });
    l.take("t", 0);
    l.take("t", 1);
    l.resetStats();
    assert.deepEqual([l.blocks, l.maxRequestsInWindow], [[], 0]);
    assert.equal(l.take("t", 2).allowed, false, "still blocked after resetStats");
    l.setBudget({ requests: 1, windowSeconds: 60 });
    assert.equal(l.take("t", 3).allowed, true);
  });

  it("adds up the time blocked, a block under way counted to now", () => {
    const blocks = [{ key: "a", from: 0, until: 10_000 }, { key: "b", from: 5000, until: 15_000 }];
    assert.equal(blockedMs(blocks, 12_000), 10_000 + 7000);
    assert.equal(blockedMs(blocks, 20_000), 20_000);
  });
});

describe("emulator rate limiter, lenient (a sliding window)", () => {
  it("accepts the budget within a window and says when the next request is accepted", () => {
    const l = new TokenRateLimiter({ requests: 3, windowSeconds: 10, mode: "lenient" });
    assert.deepEqual([0, 1000, 2000].map((t) => l.take("t", t).allowed), [true, true, true]);
    assert.deepEqual(l.take("t", 2500), { allowed: false, retryAfterSeconds: 8 }, "the stamp at 0 leaves the window at 10,000");
    assert.equal(l.take("t", 10_000).allowed, true);
    assert.equal(l.take("other", 2500).allowed, true, "budgets are per key");
    assert.deepEqual(l.blocks, [], "no blocks");
  });

  it("does not let rejected requests use up the budget", () => {
    const l = new TokenRateLimiter({ requests: 2, windowSeconds: 10, mode: "lenient" });
    for (let t = 0; t < 9000; t += 1000) l.take("t", t);
    assert.equal(l.take("t", 10_000).allowed, true);
  });

  it("tracks the peak number of requests one key sent within a window, accepted or not", () => {
    const l = new TokenRateLimiter({ requests: 2, windowSeconds: 1, mode: "lenient" });
    for (const t of [0, 100, 200, 300, 1500, 1600]) l.take("t", t);
    assert.equal(l.maxRequestsInWindow, 4);
  });

  it("rounds Retry-After up to whole seconds, at least 1", () => {
    const l = new TokenRateLimiter({ requests: 1, windowSeconds: 1, mode: "lenient" });
    l.take("t", 0);
    assert.deepEqual(l.take("t", 999), { allowed: false, retryAfterSeconds: 1 });
  });
});

describe("emulator image format sniffing", () => {
  const cases: [string, Buffer, string | undefined][] = [
    ["png", pngBytes(1), "png"],
    ["jpeg", jpegBytes(), "jpeg"],
    ["gif", gifBytes(), "gif"],
    ["webp", webpBytes(), "webp"],
    ["svg with xml prolog", svgBytes(), "svg"],
    ["bare svg with BOM and whitespace", Buffer.from('\uFEFF  <svg xmlns="http://www.w3.org/2000/svg"/>'), "svg"],
    ["heic", heicBytes(), "heic"],
    ["avif (Enterprise only)", Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from("ftypavif"), Buffer.alloc(12)]), undefined],
    ["html", Buffer.from("<html><svg></svg></html>"), undefined],
    ["empty", Buffer.alloc(0), undefined],
  ];
  for (const [name, bytes, format] of cases) {
    it(`${name} -> ${format ?? "rejected"}`, () => assert.equal(sniffImageFormat(bytes), format));
  }

  it("gives distinct, valid PNGs per seed", () => {
    assert.notDeepEqual(pngBytes(1), pngBytes(2));
    assert.equal(sniffImageFormat(pngBytes(12345)), "png");
  });

  it("flags dimensions over 12,000 px and areas over 100 megapixels", () => {
    assert.equal(dimensionProblem(pngHeaderOnly(12_000, 8_000), "png"), undefined);
    assert.match(dimensionProblem(pngHeaderOnly(12_001, 1), "png") ?? "", /12000 px/);
    assert.match(dimensionProblem(pngHeaderOnly(11_000, 11_000), "png") ?? "", /100 megapixels/);
  });
});

describe("emulator custom IDs", () => {
  it("accepts paths, unicode and 1024 characters; rejects UUIDs, edge slashes, empty and 1025 characters", () => {
    for (const ok of ["a", "a/b/c.png", "été/ü", "x".repeat(1024), "3f2504e0-4f89-11d3-9a0c-0305e82c330"]) assert.equal(customIdProblem(ok), undefined, ok);
    for (const bad of ["", "/a", "a/", "x".repeat(1025), "3F2504E0-4F89-11D3-9A0C-0305E82C3301"]) assert.ok(customIdProblem(bad), bad);
  });

  it("generates UUIDs, which custom IDs can never be", () => {
    assert.ok(isUuid(generateImageId()));
  });
});

describe("emulator D1 body parsing", () => {
  it("accepts exactly 100 parameters and 100,000 bytes", () => {
    const params = Array.from({ length: 100 }, () => "p");
    assert.equal(parseD1Body({ sql: "x".repeat(100_000), params }).length, 1);
    assert.throws(() => parseD1Body({ sql: "é".repeat(50_001) }), /100002 bytes/, "the limit is in bytes, not characters");
  });
});

describe("emulator bracketed form fields", () => {
  it("rebuilds nested objects and ignores other fields", () => {
    const fields = new Map([["metadata[a]", "1"], ["metadata[b][c]", "2"], ["id", "x"], ["metadataX", "no"]]);
    assert.deepEqual(bracketedObject(fields, "metadata"), { a: "1", b: { c: "2" } });
    assert.equal(bracketedObject(new Map([["id", "x"]]), "metadata"), undefined);
  });
});
