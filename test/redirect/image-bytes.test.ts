import { strict as assert } from "assert";
import { createHash } from "crypto";
import { metadataBytes as providerMetadataBytes, SOURCE_HASH_KEY as PROVIDER_SOURCE_HASH_KEY } from "../../provider/source-metadata";
import { acceptedImageType, metadataBytes, SOURCE_HASH_KEY, sourceHashOf } from "../../components/redirect/image-bytes";
import { jpegBytes, pngBytes } from "../emulator/fixtures";

describe("the Worker's checks of a new source (image-bytes)", () => {
    const cases: [string, Uint8Array, string | undefined][] = [
        ["PNG", pngBytes(4), "image/png"],
        ["JPEG", jpegBytes(4), "image/jpeg"],
        ["GIF", Buffer.from("GIF89a\x01\x00\x01\x00", "latin1"), "image/gif"],
        ["WebP", Buffer.from("RIFF\x10\x00\x00\x00WEBPVP8 ", "latin1"), "image/webp"],
        ["HEIC", Buffer.from("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "latin1"), "image/heic"],
        ["SVG after a prolog and a comment", Buffer.from('\uFEFF<?xml version="1.0"?>\n<!-- x --><svg xmlns="http://www.w3.org/2000/svg"/>'), "image/svg+xml"],
        ["HTML", Buffer.from("<!doctype html><p>moved</p>"), undefined],
        ["JSON", Buffer.from('{"error":"not found"}'), undefined],
        ["a truncated PNG signature", pngBytes(4).subarray(0, 5), undefined],
        ["nothing", new Uint8Array(0), undefined],
        ["a TIFF (an image Cloudflare refuses)", Buffer.from("II*\0\x08\x00\x00\x00", "latin1"), undefined],
    ];
    for (const [what, bytes, expected] of cases) {
        it(`sniffs ${what} as ${expected ?? "no image"}`, () => assert.equal(acceptedImageType(bytes), expected));
    }

    it("records sha256:<hex> of the bytes under the provider's reserved source-hash key", async () => {
        const bytes = pngBytes(9);
        assert.equal(await sourceHashOf(bytes), `sha256:${createHash("sha256").update(bytes).digest("hex")}`);
        assert.equal(SOURCE_HASH_KEY, PROVIDER_SOURCE_HASH_KEY);
    });

    it("counts metadata bytes as the provider does (UTF-8 JSON text)", () => {
        const meta = { alt: "crème brûlée", n: 3, _skh: "sha256:00" };
        assert.equal(metadataBytes(meta), providerMetadataBytes(meta));
    });
});
