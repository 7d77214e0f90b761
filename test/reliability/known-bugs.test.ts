// Bugs the reliability work found in other modules. Each test states the correct behaviour and fails today; it is
// skipped with a one-line reason until the owning module is fixed (then drop the `.skip`).
import { strict as assert } from "assert";
import { createHmac } from "crypto";
import { ImagesClient } from "../../provider/images-client";
import { startEmulator } from "../emulator";
import { startImageOrigin } from "../emulator/fixtures";
import { startRedirectWorker } from "./redirect-worker";

describe("reliability: known bugs in other modules (skipped until fixed)", function () {
    this.timeout(60_000);

    // BUG components/redirect/worker/reimport.ts reimportImage(): a 429 after the DELETE fails the upload and the restore alike.
    it.skip("an image.updated cut short by the account rate limit after any of its steps never loses the image", async () => {
        const secret = "whsec-known-bug-3";
        const token = "tok-known-bug";
        const emu = await startEmulator({ tokens: [token] });
        const origin = await startImageOrigin();
        const worker = await startRedirectWorker({
            FALLBACK: "404", WEBHOOK_SECRET: secret, IMAGES_API_BASE: emu.baseUrl, IMAGES_API_TOKEN: token, ACCOUNT_ID: emu.accountId,
        });
        const id = "kept/a.png";
        try {
            await new ImagesClient({ accountId: emu.accountId, apiToken: token, apiBaseUrl: emu.baseUrl }).upload({ id, url: origin.url("/img/1.png") });
            await worker.db.prepare("INSERT INTO redirects (path, location, image_id, shard, updated_at) VALUES (?1, ?2, ?3, 's', 0)")
                .bind("/old/a.png", `https://imagedelivery.net/${emu.accountHash}/${id}/public`, id).run();
            for (let allowed = 1; allowed <= 6; allowed++) {
                // The Worker's calls: GET image, GET blob, DELETE, POST the new bytes, POST the backup back.
                emu.setRateLimit({ requests: allowed, windowSeconds: 600 });
                const body = JSON.stringify({ type: "image.updated", imageId: id, sourceUrl: origin.url(`/img/${10 + allowed}.png`) });
                const timestamp = Math.floor(Date.now() / 1000);
                const res = await worker.fetch("http://old.test/_sourcing-kit/webhook", {
                    method: "POST", body, headers: {
                        "x-sourcing-kit-timestamp": String(timestamp),
                        "x-sourcing-kit-signature": `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`,
                    },
                });
                const answer = await res.text();
                emu.setRateLimit({ requests: 1200, windowSeconds: 300 });
                assert.ok(emu.images.has(id), `with ${allowed} API calls allowed the image is gone (HTTP ${res.status}: ${answer})`);
            }
        } finally {
            await worker.dispose();
            await Promise.all([emu.close(), origin.close()]);
        }
    });
});
