// Delivery URLs: the emulator serves the stored bytes of every image, as Cloudflare's delivery does.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startEmulator, type Emulator } from "./index";
import { parseDeliveryPath } from "./delivery";
import { gifBytes, jpegBytes, pngBytes, startImageOrigin, svgBytes, webpBytes, type ImageOrigin } from "./fixtures";
import { call, uploadForm } from "./http-helpers";
import { deliveryUrlFor } from "../../provider/image-outputs";

const UPLOAD = "/accounts/acc-test/images/v1";

describe("emulator delivery", () => {
  let emu: Emulator;
  let origin: ImageOrigin;
  let dir: string;
  const upload = async (fields: Record<string, string>, file?: { bytes: Buffer }) => {
    const a = await call(emu.baseUrl, "POST", UPLOAD, { form: uploadForm(fields, file) });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    return a.body.result as { id: string; variants: string[] };
  };
  /** The delivery URL the provider computes, moved from imagedelivery.net to the emulator. */
  const local = (id: string, variant = "public") => deliveryUrlFor(emu.accountHash, id, variant).replace("https://imagedelivery.net", emu.deliveryBaseUrl);
  const bytesOf = async (res: Response) => Buffer.from(await res.arrayBuffer());

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sk-delivery-"));
    emu = await startEmulator({ variants: ["public", "thumb"], persistPath: path.join(dir, "store.json") });
    origin = await startImageOrigin();
  });
  after(async () => {
    await emu?.close();
    await origin?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("names its delivery base URL on the emulator's own origin", () => {
    assert.equal(emu.deliveryBaseUrl, `http://127.0.0.1:${emu.port}/cdn-cgi/imagedelivery`);
  });

  it("serves uploaded bytes with the content type sniffed from them and Cloudflare's cache lifetime, without a token", async () => {
    const cases: [string, Buffer, string][] = [
      ["d/png", pngBytes(11, { width: 3, height: 2 }), "image/png"],
      ["d/jpeg", jpegBytes(2), "image/jpeg"],
      ["d/gif", gifBytes(), "image/gif"],
      ["d/webp", webpBytes(), "image/webp"],
      ["d/svg", svgBytes(3), "image/svg+xml"],
    ];
    for (const [id, bytes, type] of cases) {
      await upload({ id }, { bytes });
      const res = await fetch(local(id));
      assert.equal(res.status, 200, id);
      assert.equal(res.headers.get("content-type"), type, id);
      assert.equal(res.headers.get("cache-control"), "public, max-age=172800", id);
      assert.ok((await bytesOf(res)).equals(bytes), id);
    }
  });

  it("serves the bytes an upload by URL fetched from the origin", async () => {
    await upload({ id: "d/from-url.png", url: origin.url("/img/42.png") });
    const res = await fetch(local("d/from-url.png"));
    assert.equal(res.status, 200);
    assert.ok((await bytesOf(res)).equals(pngBytes(42)));
  });

  it("answers HEAD with the headers of GET and no body", async () => {
    const bytes = pngBytes(12);
    await upload({ id: "d/head.png" }, { bytes });
    const res = await fetch(local("d/head.png"), { method: "HEAD" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/png");
    assert.equal(res.headers.get("content-length"), String(bytes.length));
    assert.equal((await bytesOf(res)).length, 0);
  });

  it("finds custom IDs with slashes and with % written as %25, as the provider's delivery URLs spell them", async () => {
    const bytes = pngBytes(13);
    await upload({ id: "examples/products/a.png" }, { bytes });
    await upload({ id: "sale/100%.png" }, { bytes: pngBytes(14) });
    await upload({ id: "sale/100%25.png" }, { bytes: pngBytes(15) });
    assert.equal(local("sale/100%.png"), `${emu.deliveryBaseUrl}/hash-test/sale/100%25.png/public`);
    assert.ok((await bytesOf(await fetch(local("examples/products/a.png")))).equals(bytes));
    assert.ok((await bytesOf(await fetch(local("sale/100%.png")))).equals(pngBytes(14)));
    assert.ok((await bytesOf(await fetch(local("sale/100%25.png")))).equals(pngBytes(15)));
  });

  it("serves every configured variant and answers 404 for another variant, hash or image", async () => {
    await upload({ id: "d/variants.png" }, { bytes: pngBytes(16) });
    assert.equal((await fetch(local("d/variants.png", "thumb"))).status, 200);
    for (const url of [
      local("d/variants.png", "huge"),
      local("d/variants.png").replace("/hash-test/", "/other-hash/"),
      local("d/missing.png"),
      `${emu.deliveryBaseUrl}/hash-test/public`,
    ]) {
      const res = await fetch(url);
      assert.equal(res.status, 404, url);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain/, url);
    }
  });

  it("stops serving an image once it is deleted", async () => {
    await upload({ id: "d/deleted.png" }, { bytes: pngBytes(17) });
    assert.equal((await fetch(local("d/deleted.png"))).status, 200);
    assert.equal((await call(emu.baseUrl, "DELETE", `${UPLOAD}/${encodeURIComponent("d/deleted.png")}`)).status, 200);
    assert.equal((await fetch(local("d/deleted.png"))).status, 404);
  });

  it("answers 403 for an image that requires signed URLs (signatures are not emulated)", async () => {
    const { id } = await upload({ requireSignedURLs: "true" }, { bytes: pngBytes(18) });
    assert.equal((await fetch(local(id))).status, 403);
    assert.equal((await fetch(`${local(id)}?exp=9999999999&sig=00`)).status, 403);
  });

  it("is neither rate limited nor faulted: delivery is not the API", async () => {
    await upload({ id: "d/busy.png" }, { bytes: pngBytes(19) });
    emu.setRateLimit({ requests: 1, windowSeconds: 300 });
    emu.setFaults({ errorRate: 1 });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await fetch(local("d/busy.png"))).status, 200);
    } finally {
      emu.setFaults(undefined);
      emu.setRateLimit({ requests: 1200, windowSeconds: 300 });
    }
  });

  it("serves images loaded from the persist file after a restart", async () => {
    const bytes = pngBytes(20);
    await upload({ id: "d/persisted.png" }, { bytes });
    await emu.close();
    emu = await startEmulator({ variants: ["public", "thumb"], persistPath: path.join(dir, "store.json") });
    const res = await fetch(local("d/persisted.png"));
    assert.equal(res.status, 200);
    assert.ok((await bytesOf(res)).equals(bytes));
  });

  it("parses hash, ID and variant from a raw delivery path (pure)", () => {
    assert.deepEqual(parseDeliveryPath("/cdn-cgi/imagedelivery/h/a/b/c.png/public?x=1"), { hash: "h", imageId: "a/b/c.png", variant: "public" });
    assert.deepEqual(parseDeliveryPath("/cdn-cgi/imagedelivery/h/caf%C3%A9%20100%25/thumb"), { hash: "h", imageId: "café 100%", variant: "thumb" });
    assert.equal(parseDeliveryPath("/cdn-cgi/imagedelivery/h/id"), undefined);
    assert.equal(parseDeliveryPath("/cdn-cgi/imagedelivery/h//public"), undefined);
    assert.equal(parseDeliveryPath("/cdn-cgi/imagedelivery/h/100%/public"), undefined);
  });
});
