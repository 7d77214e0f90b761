// Fidelity: the official `cloudflare` SDK (v7) drives the emulator as it would drive the real API.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import Cloudflare, { toFile } from "cloudflare";
import { startEmulator, type Emulator } from "./index";
import { pngBytes, startImageOrigin, type ImageOrigin } from "./fixtures";

const account_id = "acc-sdk";

describe("emulator fidelity with the official cloudflare SDK", () => {
  let emu: Emulator;
  let origin: ImageOrigin;
  let cf: Cloudflare;

  before(async () => {
    emu = await startEmulator({ accountId: account_id, tokens: ["sdk-token"], accountHash: "hash-sdk", variants: ["public", "thumb"] });
    origin = await startImageOrigin();
    cf = new Cloudflare({ apiToken: "sdk-token", baseURL: emu.baseUrl, maxRetries: 0 });
  });
  after(async () => {
    await emu.close();
    await origin.close();
  });

  it("uploads by URL: the emulator really fetches the origin, and metadata objects arrive as sent", async () => {
    const image = await cf.images.v1.create({ account_id, url: origin.url("/img/1.png"), id: "catalog/shoes/1.png", metadata: { sku: "A1", n: 2 } } as never);
    assert.equal(image.id, "catalog/shoes/1.png");
    assert.deepEqual(image.meta, { sku: "A1", n: "2" }, "the SDK sends objects as bracketed form fields, so values arrive as strings");
    assert.equal(image.filename, "1.png");
    assert.equal(image.requireSignedURLs, false);
    assert.deepEqual(image.variants, [
      "https://imagedelivery.net/hash-sdk/catalog/shoes/1.png/public",
      "https://imagedelivery.net/hash-sdk/catalog/shoes/1.png/thumb",
    ]);
    assert.ok(!Number.isNaN(Date.parse(image.uploaded as string)));
    assert.equal(origin.requestsByPath.get("/img/1.png"), 1);
    assert.ok(emu.images.get("catalog/shoes/1.png")?.bytes.equals(pngBytes(1)));
  });

  it("uploads a file (toFile) with metadata as the documented JSON string, and a file stream without an id", async () => {
    const byFile = await cf.images.v1.create({ account_id, file: await toFile(pngBytes(2), "two.png"), id: "file-2", metadata: JSON.stringify({ source: "s3://b/two.png" }) } as never);
    assert.equal(byFile.filename, "two.png");
    assert.deepEqual(byFile.meta, { source: "s3://b/two.png" });

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "emu-sdk-"));
    const file = path.join(dir, "three.png");
    fs.writeFileSync(file, pngBytes(3));
    const byStream = await cf.images.v1.create({ account_id, file: fs.createReadStream(file) } as never);
    assert.match(byStream.id as string, /^[0-9a-f-]{36}$/, "an upload without an id gets a generated (UUID) id");
    assert.ok(emu.images.get(byStream.id as string)?.bytes.equals(pngBytes(3)));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("gets, edits metadata, serves the blob and deletes; a deleted image is a NotFoundError with code 5404", async () => {
    const got = await cf.images.v1.get("file-2", { account_id });
    assert.deepEqual(got.meta, { source: "s3://b/two.png" });

    const edited = await cf.images.v1.edit("file-2", { account_id, metadata: { source: "s3://b/two-v2.png" } });
    assert.deepEqual(edited.meta, { source: "s3://b/two-v2.png" });
    assert.deepEqual((await cf.images.v1.get("file-2", { account_id })).meta, { source: "s3://b/two-v2.png" });

    const blob = await cf.images.v1.blobs.get("file-2", { account_id });
    assert.equal(blob.headers.get("content-type"), "image/png");
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(pngBytes(2)));

    await cf.images.v1.delete("file-2", { account_id });
    await assert.rejects(cf.images.v1.get("file-2", { account_id }), (err: unknown) => {
      assert.ok(err instanceof Cloudflare.NotFoundError);
      assert.equal(err.status, 404);
      assert.deepEqual(err.errors, [{ code: 5404, message: "Image not found" }]);
      return true;
    });
  });

  it("answers an existing custom id with a ConflictError: HTTP 409, code 5409", async () => {
    await assert.rejects(cf.images.v1.create({ account_id, url: origin.url("/img/1.png"), id: "catalog/shoes/1.png" } as never), (err: unknown) => {
      assert.ok(err instanceof Cloudflare.ConflictError);
      assert.equal(err.status, 409);
      assert.deepEqual(err.errors, [{ code: 5409, message: "Resource already exists. Verify the resource information and try again." }]);
      return true;
    });
  });

  it("lists with v2 across several pages: opaque tokens of at most 32 chars, null on the last page, newest first", async () => {
    emu.images.clear();
    for (let i = 0; i < 27; i++) await cf.images.v1.create({ account_id, file: await toFile(pngBytes(100 + i), `p${i}.png`), id: `page/${i}` } as never);
    const pages: string[][] = [];
    let token: string | null | undefined;
    do {
      const page = await cf.images.v2.list({ account_id, per_page: 10, ...(token ? { continuation_token: token } : {}) });
      pages.push((page.images ?? []).map((img) => img.id as string));
      token = page.continuation_token;
      if (token) assert.ok(token.length <= 32, `continuation_token "${token}" is longer than 32 chars`);
    } while (token);
    assert.deepEqual(pages.map((p) => p.length), [10, 10, 7]);
    assert.deepEqual(pages.flat(), Array.from({ length: 27 }, (_, i) => `page/${26 - i}`));

    const asc = await cf.images.v2.list({ account_id, per_page: 100, sort_order: "asc" });
    assert.equal(asc.continuation_token, null);
    assert.deepEqual(asc.images?.map((img) => img.id), Array.from({ length: 27 }, (_, i) => `page/${i}`));
  });

  it("reports stats as count.current / count.allowed", async () => {
    const stats = await cf.images.v1.stats.get({ account_id });
    assert.deepEqual(stats, { count: { current: 27, allowed: 100_000 } });
  });

  it("issues a batch token whose host serves the same image routes", async () => {
    const { token, expiresAt } = await cf.get<{ result: { token: string; expiresAt: string } }>(`/accounts/${account_id}/images/v1/batch_token`).then((r) => r.result);
    assert.ok(Date.parse(expiresAt) > Date.now());
    const batch = new Cloudflare({ apiToken: token, baseURL: emu.batchBaseUrl, maxRetries: 0 });
    const page = await batch.get<{ result: { images: unknown[] } }>("/images/v2", { query: { per_page: 10 } });
    assert.equal(page.result.images.length, 10);
  });

  it("surfaces a bad token as AuthenticationError (10000) and another account as PermissionDeniedError (9109)", async () => {
    const bad = new Cloudflare({ apiToken: "wrong", baseURL: emu.baseUrl, maxRetries: 0 });
    await assert.rejects(bad.images.v1.stats.get({ account_id }), (err: unknown) => {
      assert.ok(err instanceof Cloudflare.AuthenticationError);
      assert.equal(err.errors[0].code, 10000);
      return true;
    });
    await assert.rejects(cf.images.v1.stats.get({ account_id: "someone-else" }), (err: unknown) => {
      assert.ok(err instanceof Cloudflare.PermissionDeniedError);
      assert.equal(err.errors[0].code, 9109);
      return true;
    });
  });

  it("surfaces the rate limit as RateLimitError 429, code 971, with Retry-After", async () => {
    const limited = await startEmulator({ accountId: account_id, tokens: ["sdk-token"], rateLimit: { requests: 3, windowSeconds: 60 } });
    try {
      const client = new Cloudflare({ apiToken: "sdk-token", baseURL: limited.baseUrl, maxRetries: 0 });
      for (let i = 0; i < 3; i++) await client.images.v1.stats.get({ account_id });
      await assert.rejects(client.images.v1.stats.get({ account_id }), (err: unknown) => {
        assert.ok(err instanceof Cloudflare.RateLimitError);
        assert.deepEqual(err.errors, [{ code: 971, message: "Please wait and consider throttling your request speed" }]);
        const retryAfter = Number(err.headers?.get("retry-after"));
        assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
        return true;
      });
      assert.equal(limited.counters.http429, 1);
    } finally {
      await limited.close();
    }
  });
});
