// Issue 8.5: forged, stale and replayed webhook deliveries change nothing: the D1 redirect table and the images in
// the emulator stay exactly as they were, and the Worker makes no Images API call for them.
import { strict as assert } from "assert";
import { createHash, createHmac } from "crypto";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, pngOfSize, startImageOrigin } from "../emulator/fixtures";
import { DesiredResource, EngineDriver } from "../host/engine-driver";
import {
    auditImages, captureProviders, CLEAN_AUDIT, expose, Exposure, GENEROUS_RATE_LIMIT, imageResource, providerConfig,
    rowsResource, secret, writeRequests,
} from "./harness";
import { ImagesClient } from "../../provider/images-client";
import { DATABASE_ID, RedirectWorker, startRedirectWorker } from "./redirect-worker";

const BOOTSTRAP = "tok-bootstrap-webhook-0e6b1f52a7";
const SCOPED = "tok-scoped-webhook-9d24c7e31b";
const WEBHOOK_SECRET = "whsec-reliability-4f8a2b6c19";
const HOST = "http://old-cdn.test";
const WEBHOOK = `${HOST}/_sourcing-kit/webhook`;
const N = 6;

const now = () => Math.floor(Date.now() / 1000);

function signature(body: string, timestamp: number | string, key = WEBHOOK_SECRET): string {
    return createHmac("sha256", key).update(`${timestamp}.${body}`).digest("hex");
}

function delivery(body: string, opts: { timestamp?: number | string; key?: string; signatureHeader?: string | null; timestampHeader?: string | null } = {}): RequestInit {
    const timestamp = opts.timestamp ?? now();
    const headers: Record<string, string> = { "content-type": "application/json" };
    const ts = opts.timestampHeader === undefined ? String(timestamp) : opts.timestampHeader;
    const sig = opts.signatureHeader === undefined ? `sha256=${signature(body, timestamp, opts.key)}` : opts.signatureHeader;
    if (ts !== null) headers["x-sourcing-kit-timestamp"] = ts;
    if (sig !== null) headers["x-sourcing-kit-signature"] = sig;
    return { method: "POST", body, headers };
}

describe("reliability: forged, stale and replayed webhooks change nothing", function () {
    this.timeout(120_000);
    let emu: Emulator;
    let origin: ImageOrigin;
    let worker: RedirectWorker;
    let driver: EngineDriver;
    let desired: DesiredResource[];
    const exposure = new Exposure();
    let rejected = 0;

    const imageId = (i: number) => `hooks/img-${i}.png`;
    const deleted = (i: number) => JSON.stringify({ type: "image.deleted", imageId: imageId(i) });
    const updated = (i: number, v = 2) => JSON.stringify({ type: "image.updated", imageId: imageId(i), sourceUrl: origin.url(`/img/${100 + i * 10 + v}.png`) });

    /** Everything a webhook could change: every redirect row (all columns) and every stored image (bytes hashed). */
    async function snapshot(): Promise<string> {
        const { results } = await worker.db.prepare("SELECT * FROM redirects ORDER BY path").bind().all<Record<string, unknown>>();
        const images = [...emu.images.values()].map((img) => ({
            id: img.id, uploaded: img.uploaded, meta: img.meta, sourceUrl: img.sourceUrl, bytes: createHash("sha256").update(img.bytes).digest("hex"),
        })).sort((a, b) => a.id.localeCompare(b.id));
        return JSON.stringify({ rows: results, images });
    }

    async function send(init: RequestInit): Promise<{ status: number; body: string }> {
        const res = await worker.fetch(WEBHOOK, init);
        const body = await res.text();
        exposure.add("webhook answer", `${res.status} ${body} ${JSON.stringify([...res.headers])}`);
        return { status: res.status, body };
    }

    /** Sends each delivery and checks it is refused with 401 and leaves D1 and the images untouched, with no API call. */
    async function assertChangesNothing(cases: [string, RequestInit][], reason: RegExp): Promise<void> {
        const before = await snapshot();
        emu.resetCounters();
        for (const [what, init] of cases) {
            const { status, body } = await send(init);
            assert.equal(status, 401, `${what}: ${body}`);
            assert.match(body, reason, what);
            rejected++;
        }
        assert.equal(emu.counters.requests, 0, "the Worker called the Images API");
        assert.equal(await snapshot(), before);
    }

    before(async () => {
        const providers = await captureProviders();
        origin = await startImageOrigin();
        // The emulator's D1 route serves the Worker's database; the Worker calls the emulator: start the emulator first.
        emu = await startEmulator({
            tokens: [SCOPED, BOOTSTRAP], rateLimit: GENEROUS_RATE_LIMIT, d1: { query: (id, statements) => worker.backend.query(id, statements) },
        });
        worker = await startRedirectWorker({
            FALLBACK: "404", CACHE_TTL: "0", NEGATIVE_CACHE_TTL: "0", WEBHOOK_SECRET,
            IMAGES_API_BASE: emu.baseUrl, IMAGES_API_TOKEN: SCOPED, ACCOUNT_ID: emu.accountId,
        });

        // The migrated state the webhooks act on, made by the real provider host: images and their redirect rows.
        driver = await EngineDriver.start(providerConfig(BOOTSTRAP), undefined, 8);
        exposure.watch("host output", driver.host.output);
        const rows: Record<string, string> = {};
        desired = Array.from({ length: N }, (_, i) => {
            origin.register(`/src/${i}.png`, pngBytes(100 + i * 10));
            rows[`/old/${i}.png`] = `https://imagedelivery.net/${emu.accountHash}/${imageId(i)}/public`;
            return imageResource(providers.image, `hook-${i}`, {
                accountId: emu.accountId, imageId: imageId(i), url: origin.url(`/src/${i}.png`), sourceHash: `sha256-hook-${i}`,
                apiBaseUrl: emu.baseUrl, apiToken: secret(SCOPED),
            });
        });
        desired.push(rowsResource(providers.rows, "hook-rows", {
            accountId: emu.accountId, databaseId: DATABASE_ID, shard: "hook-rows", rows, apiBaseUrl: emu.baseUrl, apiToken: secret(SCOPED),
        }));
        const result = await driver.up(desired);
        expose(exposure, "seed up", driver, result.errors);
        assert.deepEqual(result.errors, []);
        assert.deepEqual(auditImages(emu, driver, desired), CLEAN_AUDIT);
        assert.equal(Object.keys(await worker.rows()).length, N);
    });

    after(async () => {
        await driver?.host.kill();
        await worker?.dispose();
        await emu?.close();
        await origin?.close();
    });

    it("forged deliveries (wrong key, tampered body or timestamp, missing or malformed signature) are refused", async () => {
        const body = deleted(0);
        const ts = now();
        const good = `sha256=${signature(body, ts)}`;
        await assertChangesNothing([
            ["signed with another key", delivery(body, { key: "whsec-attacker-guess" })],
            ["signed with the scoped API token as key", delivery(body, { key: SCOPED })],
            ["body changed after signing", { ...delivery(body, { timestamp: ts }), body: deleted(1) }],
            ["whitespace added to the signed body", { ...delivery(body, { timestamp: ts }), body: `${body} ` }],
            ["timestamp changed after signing", delivery(body, { timestamp: ts, timestampHeader: String(ts + 1), signatureHeader: good })],
            ["no signature", delivery(body, { signatureHeader: null })],
            ["no timestamp", delivery(body, { timestampHeader: null, signatureHeader: good })],
            ["signature without the sha256= prefix", delivery(body, { timestamp: ts, signatureHeader: signature(body, ts) })],
            ["signature truncated", delivery(body, { timestamp: ts, signatureHeader: good.slice(0, -2) })],
            ["signature of the empty body", delivery(body, { timestamp: ts, signatureHeader: `sha256=${signature("", ts)}` })],
            ["all-zero signature", delivery(body, { signatureHeader: `sha256=${"0".repeat(64)}` })],
            ["non-numeric timestamp", delivery(body, { timestamp: "now" })],
            ["sha1 instead of sha256", delivery(body, { timestamp: ts, signatureHeader: `sha1=${createHmac("sha1", WEBHOOK_SECRET).update(`${ts}.${body}`).digest("hex")}` })],
        ], /signature|timestamp/);
    });

    it("stale deliveries (correctly signed, outside the 5-minute window either way) are refused", async () => {
        await assertChangesNothing([
            ["6 minutes old", delivery(deleted(0), { timestamp: now() - 360 })],
            ["a day old", delivery(updated(1), { timestamp: now() - 86_400 })],
            ["10 minutes in the future", delivery(deleted(0), { timestamp: now() + 600 })],
            ["timestamp 0", delivery(deleted(0), { timestamp: 0 })],
        ], /5-minute window/);
    });

    it("a replayed delivery is refused after the original was applied once", async () => {
        const original = delivery(updated(2));
        emu.resetCounters();
        const first = await send(original);
        assert.equal(first.status, 200, first.body);
        assert.equal(emu.counters.uploads, 1);
        await assertChangesNothing([
            ["replayed at once", original],
            ["replayed again", original],
            ["replayed with the headers in upper case", { ...original, headers: Object.fromEntries(Object.entries(original.headers as Record<string, string>).map(([k, v]) => [k.toUpperCase(), v])) }],
        ], /replayed/);
    });

    it("concurrent copies of one delivery are applied exactly once", async () => {
        const original = delivery(deleted(3));
        emu.resetCounters();
        const answers = await Promise.all(Array.from({ length: 5 }, () => send(original)));
        const statuses = answers.map((a) => a.status).sort();
        assert.deepEqual(statuses, [200, 401, 401, 401, 401], JSON.stringify(answers));
        rejected += 4;
        assert.equal(emu.counters.deletes, 1);
        assert.ok(!emu.images.has(imageId(3)));
        assert.ok(!(Object.keys(await worker.rows())).includes("/old/3.png"));
    });

    it("correctly signed deliveries the Worker must refuse change nothing: unusable new sources, images no row points at", async () => {
        origin.register("/text.png", { body: Buffer.from("a text file, not a PNG"), contentType: "text/plain" });
        origin.register("/huge.png", { body: pngOfSize(10 * 1024 * 1024 + 1), contentType: "image/png" });
        // An image in the account that the migration does not own (uploaded by someone else): webhooks must not touch it.
        await new ImagesClient({ accountId: emu.accountId, apiToken: SCOPED, apiBaseUrl: emu.baseUrl }).upload({ id: "outside/theirs.png", url: origin.url("/img/77.png") });
        const before = await snapshot();
        emu.resetCounters();
        const cases: [string, string, number][] = [
            ["new source answers 404", JSON.stringify({ type: "image.updated", imageId: imageId(4), sourceUrl: origin.url("/missing.png") }), 422],
            ["new source is not an image", JSON.stringify({ type: "image.updated", imageId: imageId(4), sourceUrl: origin.url("/text.png") }), 422],
            ["new source is 10 MB + 1 byte", JSON.stringify({ type: "image.updated", imageId: imageId(4), sourceUrl: origin.url("/huge.png") }), 422],
            ["update of an image no row points at", JSON.stringify({ type: "image.updated", imageId: "never/migrated.png", sourceUrl: origin.url("/img/5.png") }), 404],
            ["update of an image the migration does not own", JSON.stringify({ type: "image.updated", imageId: "outside/theirs.png", sourceUrl: origin.url("/img/5.png") }), 404],
            ["delete of an image the migration does not own", JSON.stringify({ type: "image.deleted", imageId: "outside/theirs.png" }), 404],
        ];
        for (const [what, body, expected] of cases) {
            const res = await send(delivery(body));
            assert.equal(res.status, expected, `${what}: ${res.body}`);
            rejected++;
        }
        assert.equal(writeRequests(emu), 0, "no Images API write");
        assert.equal(await snapshot(), before);
    });

    it("never shows the webhook secret or a token in the Worker's answers, the state or the host output", () => {
        console.log(`      ${rejected} forged, stale or replayed deliveries refused without a change`);
        assert.deepEqual(exposure.leaks({ webhookSecret: WEBHOOK_SECRET, scoped: SCOPED, bootstrap: BOOTSTRAP }), []);
    });
});
