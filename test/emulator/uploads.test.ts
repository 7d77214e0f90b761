// Upload rules, checked over raw HTTP: what the SDK tests cannot reach.
import * as assert from "node:assert/strict";
import { startEmulator, type Emulator } from "./index";
import { gifBytes, heicBytes, jpegBytes, pngBytes, pngHeaderOnly, pngOfSize, startImageOrigin, svgBytes, webpBytes, type ImageOrigin } from "./fixtures";
import { call, errorCode, uploadForm } from "./http-helpers";

const UPLOAD = "/accounts/acc-test/images/v1";

describe("emulator uploads", () => {
  let emu: Emulator;
  let origin: ImageOrigin;
  const upload = (fields: Record<string, string>, file?: { bytes: Buffer; filename?: string }) => call(emu.baseUrl, "POST", UPLOAD, { form: uploadForm(fields, file) });

  before(async () => {
    emu = await startEmulator({ fetchTimeoutMs: 500 });
    origin = await startImageOrigin();
  });
  after(async () => {
    await emu.close();
    await origin.close();
  });

  it("answers every failure in the envelope with result null", async () => {
    const a = await upload({});
    assert.equal(a.status, 400);
    assert.deepEqual(Object.keys(a.body).sort(), ["errors", "messages", "result", "success"]);
    assert.equal(a.body.success, false);
    assert.equal(a.body.result, null);
    assert.deepEqual(a.body.messages, []);
    assert.equal(errorCode(a), 5400);
  });

  it("rejects both file and url, and neither, with 400 / 5400", async () => {
    const both = await upload({ url: origin.url("/img/1.png") }, { bytes: pngBytes(1) });
    assert.equal(both.status, 400);
    assert.equal(errorCode(both), 5400);
    assert.match(both.body.errors[0].message, /either file or url/);
    const neither = await upload({ id: "nothing" });
    assert.equal(neither.status, 400);
    assert.equal(errorCode(neither), 5400);
    assert.equal(emu.images.size, 0);
  });

  it("accepts PNG, JPEG, GIF, WebP, SVG and HEIC sniffed from the bytes, whatever the filename says", async () => {
    const cases: [string, Buffer, string][] = [
      ["fmt/png", pngBytes(7), "image/png"],
      ["fmt/jpeg", jpegBytes(1), "image/jpeg"],
      ["fmt/gif", gifBytes(), "image/gif"],
      ["fmt/webp", webpBytes(), "image/webp"],
      ["fmt/svg", svgBytes(1), "image/svg+xml"],
      ["fmt/heic", heicBytes(), "image/heic"],
    ];
    for (const [id, bytes, type] of cases) {
      const a = await upload({ id }, { bytes, filename: "misleading.txt" });
      assert.equal(a.status, 200, `${id}: ${JSON.stringify(a.body)}`);
      assert.equal(emu.images.get(id)?.contentType, type);
      const blob = await fetch(`${emu.baseUrl}${UPLOAD}/${encodeURIComponent(id)}/blob`, { headers: { authorization: "Bearer test-token" } });
      assert.equal(blob.headers.get("content-type"), type);
      assert.ok(Buffer.from(await blob.arrayBuffer()).equals(bytes));
    }
  });

  it("rejects bytes that are not an accepted image with 415 / 5415", async () => {
    for (const bytes of [Buffer.from("hello, not an image"), Buffer.alloc(0), Buffer.from("%PDF-1.7\n")]) {
      const a = await upload({}, { bytes });
      assert.equal(a.status, 415);
      assert.equal(errorCode(a), 5415);
    }
  });

  it("rejects a file over 10 MB, and accepts one of exactly 10 MB", async () => {
    const over = await upload({ id: "big/over" }, { bytes: pngOfSize(10 * 1024 * 1024 + 1) });
    assert.equal(over.status, 413);
    assert.equal(errorCode(over), 5400);
    assert.ok(!emu.images.has("big/over"));
    const exact = await upload({ id: "big/exact" }, { bytes: pngOfSize(10 * 1024 * 1024) });
    assert.equal(exact.status, 200);
    emu.images.delete("big/exact");
  });

  it("rejects an image over 12,000 px per side from its header", async () => {
    const a = await upload({ id: "huge" }, { bytes: pngHeaderOnly(12_001, 10) });
    assert.equal(a.status, 400);
    assert.match(a.body.errors[0].message, /12000 px/);
  });

  it("applies the custom ID rules: not a UUID, no leading or trailing slash, at most 1024 characters", async () => {
    const bad = ["3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/leading", "trailing/", "x".repeat(1025), ""];
    for (const id of bad) {
      const a = await upload({ id }, { bytes: pngBytes(1) });
      assert.equal(a.status, 400, id);
      assert.equal(errorCode(a), 5400, id);
    }
    const ok = await upload({ id: "y".repeat(1024) }, { bytes: pngBytes(1) });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.result.id.length, 1024);
  });

  it("rejects a custom ID together with requireSignedURLs=true, but allows it without a custom ID", async () => {
    const a = await upload({ id: "private/1", requireSignedURLs: "true" }, { bytes: pngBytes(1) });
    assert.equal(a.status, 400);
    assert.equal(errorCode(a), 5400);
    const b = await upload({ requireSignedURLs: "true" }, { bytes: pngBytes(1) });
    assert.equal(b.status, 200);
    assert.equal(b.body.result.requireSignedURLs, true);
  });

  it("takes metadata as a JSON string of at most 1024 bytes, or as bracketed fields", async () => {
    const fits = JSON.stringify({ k: "v".repeat(1024 - 8) });
    assert.equal(Buffer.byteLength(fits), 1024);
    assert.equal((await upload({ id: "meta/fits", metadata: fits }, { bytes: pngBytes(1) })).status, 200);
    const over = await upload({ id: "meta/over", metadata: JSON.stringify({ k: "v".repeat(1024 - 7) }) }, { bytes: pngBytes(1) });
    assert.equal(over.status, 400);
    assert.match(over.body.errors[0].message, /1024 bytes/);
    assert.equal((await upload({ id: "meta/array", metadata: "[1,2]" }, { bytes: pngBytes(1) })).status, 400);
    assert.equal((await upload({ id: "meta/garbage", metadata: "{nope" }, { bytes: pngBytes(1) })).status, 400);
    const bracketed = await upload({ id: "meta/bracketed", "metadata[a]": "1", "metadata[b][c]": "2" }, { bytes: pngBytes(1) });
    assert.deepEqual(bracketed.body.result.meta, { a: "1", b: { c: "2" } });
  });

  it("answers an existing ID with HTTP 409, code 5409 and Cloudflare's message, leaving the stored image alone", async () => {
    await upload({ id: "dup/1", metadata: '{"v":1}' }, { bytes: pngBytes(1) });
    const again = await upload({ id: "dup/1", metadata: '{"v":2}' }, { bytes: pngBytes(2) });
    assert.equal(again.status, 409);
    assert.deepEqual(again.body.errors, [{ code: 5409, message: "Resource already exists. Verify the resource information and try again." }]);
    assert.deepEqual(emu.images.get("dup/1")?.meta, { v: 1 });
  });

  it("handles IDs with slashes, spaces and unicode through URL-encoded paths (%2F)", async () => {
    const id = "shop/été 2024/a+b.png";
    assert.equal((await upload({ id }, { bytes: pngBytes(3) })).status, 200);
    const path = `${UPLOAD}/${encodeURIComponent(id)}`;
    assert.equal((await call(emu.baseUrl, "GET", path)).body.result.id, id);
    const patched = await call(emu.baseUrl, "PATCH", path, { json: { metadata: { n: 1 }, creator: "me" } });
    assert.deepEqual(patched.body.result.meta, { n: 1 });
    assert.equal(patched.body.result.creator, "me");
    assert.equal((await call(emu.baseUrl, "DELETE", path)).body.result && true, true);
    assert.equal((await call(emu.baseUrl, "GET", path)).status, 404);
    const raw = await call(emu.baseUrl, "GET", `${UPLOAD}/shop/x/y`);
    assert.equal(raw.status, 404);
    assert.equal(errorCode(raw), 7003, "an unencoded slash is another path, not an image id");
  });

  it("rejects PATCH metadata over 1024 bytes and requireSignedURLs on a custom ID", async () => {
    await upload({ id: "patch/1" }, { bytes: pngBytes(1) });
    const path = `${UPLOAD}/${encodeURIComponent("patch/1")}`;
    assert.equal((await call(emu.baseUrl, "PATCH", path, { json: { metadata: { k: "v".repeat(1100) } } })).status, 400);
    assert.equal((await call(emu.baseUrl, "PATCH", path, { json: { requireSignedURLs: true } })).status, 400);
    assert.equal((await call(emu.baseUrl, "PATCH", `${UPLOAD}/missing`, { json: { metadata: {} } })).status, 404);
  });

  it("fetches url uploads from the origin and answers origin errors, timeouts and bad URLs with 400", async () => {
    origin.register("/gone.png", { body: Buffer.from("no"), status: 404 });
    origin.register("/slow.png", { body: pngBytes(1), delayMs: 2000 });
    origin.register("/text.png", { body: Buffer.from("plain text"), contentType: "image/png" });
    origin.register("/named%20file.png", pngBytes(9));
    for (const [url, status] of [
      [origin.url("/gone.png"), 400],
      [origin.url("/slow.png"), 400],
      ["ftp://example.invalid/x.png", 400],
      ["not a url", 400],
      [origin.url("/text.png"), 415],
    ] as const) {
      const a = await upload({ url });
      assert.equal(a.status, status, `${url}: ${JSON.stringify(a.body)}`);
    }
    const named = await upload({ url: origin.url("/named%20file.png") });
    assert.equal(named.body.result.filename, "named file.png");
    assert.equal(emu.images.get(named.body.result.id)?.sourceUrl, origin.url("/named%20file.png"));
  });

  it("sends basic-auth credentials of a url upload to the origin", async () => {
    let seen: string | undefined;
    const http = await import("node:http");
    const server = http.createServer((req, res) => {
      seen = req.headers.authorization;
      res.writeHead(200, { "content-type": "image/png" });
      res.end(pngBytes(4));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const a = await upload({ url: `http://user:p%40ss@127.0.0.1:${port}/x.png` });
    server.close();
    assert.equal(a.status, 200);
    assert.equal(seen, `Basic ${Buffer.from("user:p@ss").toString("base64")}`);
  });
});
