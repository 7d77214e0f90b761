// A signed re-import that runs into Cloudflare's account rate limit part-way (found as a lost image by this suite;
// fixed by moving the re-import's writes to the batch host and retrying within bounds).
import { strict as assert } from "assert";
import { createHmac } from "crypto";
import { ImagesClient } from "../../provider/images-client";
import { startEmulator } from "../emulator";
import { startImageOrigin } from "../emulator/fixtures";
import { startRedirectWorker } from "./redirect-worker";

describe("reliability: webhook re-import under the account rate limit", function () {
    this.timeout(60_000);

    it("an image.updated cut short by the account rate limit after any of its steps never loses the image", async () => {
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
