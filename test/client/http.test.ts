import { strict as assert } from "assert";
import * as util from "util";
import FormData from "form-data";
import { z } from "zod";
import { CloudflareApiError } from "../../provider/errors";
import { ApiClientOptions, CloudflareApi } from "../../provider/http";
import { Behaviour, drop, envelope, fail, hang, LoopbackServer, ok, startLoopback } from "./loopback-server";

const TOKEN = "tok-S3cr3t-9f8e7d6c5b4a";
const Result = z.object({ n: z.number() });
let limiterSeq = 0;

describe("client/http: CloudflareApi against a controlled loopback server", () => {
    let server: LoopbackServer;
    before(async () => {
        server = await startLoopback();
    });
    after(async () => {
        await server.close();
    });

    // Each test gets its own limiter so that a 429 pause in one test cannot slow the next.
    function api(opts: Partial<ApiClientOptions> = {}): CloudflareApi {
        return new CloudflareApi({ apiToken: TOKEN, apiBaseUrl: server.baseUrl, baseDelayMs: 5, maxDelayMs: 50,
            limiterKey: `http-test-${++limiterSeq}`, ...opts });
    }

    it("returns the zod-parsed result of the envelope and sends the bearer token", async () => {
        server.script(ok({ n: 7, extra: true }));
        const value = await api().request({ method: "GET", path: "/accounts/a/thing", query: { q: "x y", none: undefined },
            schema: Result });
        assert.deepEqual(value, { n: 7 });
        assert.equal(server.seen.length, 1);
        assert.equal(server.seen[0].url, "/client/v4/accounts/a/thing?q=x+y");
        assert.equal(server.seen[0].headers.authorization, `Bearer ${TOKEN}`);
        assert.match(server.seen[0].headers["user-agent"] ?? "", /^sourcing-kit/);
    });

    it("fails at once when Retry-After exceeds maxRetryAfterMs, and says how long the server asked to wait", async () => {
        server.script(fail(429, 971, "blocked", { "retry-after": "3600" }), ok({ n: 1 }));
        const err = await api({ maxRetryAfterMs: 60_000 }).request({ method: "GET", path: "/x", schema: Result })
            .then(() => assert.fail("expected a CloudflareApiError"), (e: unknown) => e as CloudflareApiError);
        assert.equal(server.seen.length, 1);
        assert.equal(err.retryAfterMs, 3_600_000);
        assert.match(err.message, /HTTP 429, code 971: blocked, Retry-After 3600000 ms exceeds maxRetryAfterMs/);
    });

    it("retries a 429 with Retry-After: 2 no sooner than 2 s later (measured on the server)", async () => {
        server.script(fail(429, 971, "Please wait and consider throttling your request speed", { "retry-after": "2" }),
            ok({ n: 1 }));
        const value = await api().request({ method: "GET", path: "/x", schema: Result });
        assert.deepEqual(value, { n: 1 });
        assert.equal(server.seen.length, 2);
        const gap = server.seen[1].at - server.seen[0].at;
        assert.ok(gap >= 2000, `retried after ${gap.toFixed(1)} ms`);
    });

    it("does not retry a 400: exactly one request, and the error carries status, code, method and path", async () => {
        server.script(fail(400, 5400, "Bad request: metadata too large"), ok({ n: 1 }));
        const err = await api().request({ method: "POST", path: "/accounts/acc-1/images/v1", json: {}, schema: Result })
            .then(() => assert.fail("expected a CloudflareApiError"), (e: unknown) => e);
        assert.ok(err instanceof CloudflareApiError);
        assert.equal(server.seen.length, 1);
        assert.equal(err.status, 400);
        assert.deepEqual(err.codes, [5400]);
        assert.ok(err.hasCode(5400));
        assert.equal(err.retryable, false);
        assert.equal(err.method, "POST");
        assert.equal(err.path, "/accounts/acc-1/images/v1");
        assert.equal(err.message, "POST /accounts/acc-1/images/v1: HTTP 400, code 5400: Bad request: metadata too large");
    });

    it("retries 500, 502 and 524 until the request succeeds", async () => {
        server.script(fail(500, 10001, "internal"), fail(502, 10001, "bad gateway"),
            (_req, res) => { res.writeHead(524, { "content-type": "text/html" }); res.end("<html>A timeout occurred</html>"); },
            ok({ n: 2 }));
        assert.deepEqual(await api().request({ method: "GET", path: "/x", schema: Result }), { n: 2 });
        assert.equal(server.seen.length, 4);
    });

    it("retries a dropped connection, before the answer and in the middle of it", async () => {
        const cutShort: Behaviour = (_req, res) => {
            res.writeHead(200, { "content-type": "application/json", "content-length": "500" });
            res.write('{"success":true,');
            setTimeout(() => res.socket?.destroy(), 20);
        };
        server.script(drop, cutShort, ok({ n: 3 }));
        assert.deepEqual(await api().request({ method: "DELETE", path: "/x", schema: Result }), { n: 3 });
        assert.equal(server.seen.length, 3);
    });

    it("retries a request that times out", async () => {
        server.script(hang, ok({ n: 4 }));
        assert.deepEqual(await api({ timeoutMs: 300 }).request({ method: "GET", path: "/x", schema: Result }), { n: 4 });
        assert.equal(server.seen.length, 2);
    });

    it("gives up after maxAttempts with a retryable error that says how many attempts were made", async () => {
        server.script(fail(503, 10001, "unavailable"));
        const err = await api({ maxAttempts: 3 }).request({ method: "GET", path: "/x", schema: Result })
            .then(() => assert.fail("expected an error"), (e: unknown) => e as CloudflareApiError);
        assert.equal(server.seen.length, 3);
        assert.equal(err.attempts, 3);
        assert.equal(err.retryable, true);
        assert.match(err.message, /HTTP 503, code 10001: unavailable \(after 3 attempts\)/);
    });

    it("does not repeat a non-idempotent request that may have been applied, but does repeat it after a 429", async () => {
        server.script(fail(500, 10001, "internal"), ok({ n: 1 }));
        await assert.rejects(api().request({ method: "POST", path: "/x", json: {}, schema: Result, idempotent: false }),
            (e: CloudflareApiError) => e.status === 500);
        assert.equal(server.seen.length, 1);
        server.script(fail(429, 971, "slow down", { "retry-after": "0" }), ok({ n: 5 }));
        assert.deepEqual(await api().request({ method: "POST", path: "/x", json: {}, schema: Result, idempotent: false }),
            { n: 5 });
        assert.equal(server.seen.length, 2);
    });

    it("rebuilds a multipart body for every attempt", async () => {
        server.script(drop, ok({ n: 6 }));
        let built = 0;
        const form = () => {
            built++;
            const f = new FormData();
            f.append("id", "img-1");
            f.append("file", Buffer.from("PNGDATA"), { filename: "a.png" });
            return f;
        };
        assert.deepEqual(await api().request({ method: "POST", path: "/x", form, schema: Result }), { n: 6 });
        assert.equal(built, 2);
        assert.match(server.seen[1].headers["content-type"] ?? "", /^multipart\/form-data; boundary=/);
        assert.ok(server.seen[1].body.includes("PNGDATA"));
        assert.equal(Number(server.seen[1].headers["content-length"]), server.seen[1].body.length);
    });

    it("reports an unexpected result shape without retrying", async () => {
        server.script(ok({ n: "seven" }));
        await assert.rejects(api().request({ method: "GET", path: "/x", schema: Result }),
            (e: CloudflareApiError) => /unexpected result shape \(n: /.test(e.message) && e.retryable === false);
        assert.equal(server.seen.length, 1);
    });

    it("holds every caller sharing the limiter after a 429, not only the one that got it", async () => {
        const shared = api();
        let first = true;
        server.route((req) => {
            if (req.url.endsWith("/a") && first) {
                first = false;
                return fail(429, 971, "slow down", { "retry-after": "1" });
            }
            return ok({ n: 0 });
        });
        try {
            const a = shared.request({ method: "GET", path: "/a", schema: Result });
            while (server.seen.length === 0) await new Promise((r) => setTimeout(r, 5));
            await new Promise((r) => setTimeout(r, 50)); // the 429 has been answered and the limiter paused
            await shared.request({ method: "GET", path: "/b", schema: Result });
            await a;
        } finally {
            server.route(() => undefined);
        }
        const t429 = server.seen.find((r) => r.url.endsWith("/a"))!.at;
        const b = server.seen.find((r) => r.url.endsWith("/b"))!.at;
        assert.ok(b - t429 >= 1000, `the other caller went out ${(b - t429).toFixed(1)} ms after the 429`);
    });

    it("never lets the token appear in an error message, stack, JSON or inspection", async () => {
        const echo = (status: number) => (req: import("http").IncomingMessage, res: import("http").ServerResponse) => {
            res.writeHead(status, { "content-type": "application/json" });
            res.end(JSON.stringify({ success: false, result: null, messages: [],
                errors: [{ code: 10000, message: `Authentication error for ${req.headers.authorization}` }] }));
        };
        const plainEcho = (req: import("http").IncomingMessage, res: import("http").ServerResponse) => {
            res.writeHead(400, { "content-type": "text/plain" });
            res.end(`bad header ${req.headers.authorization}`);
        };
        const cases: Array<{ name: string; run: () => Promise<unknown> }> = [
            { name: "403 echoing the token", run: () => { server.script(echo(403)); return api().request({ method: "GET", path: "/x", schema: Result }); } },
            { name: "plain-text 400 echoing it", run: () => { server.script(plainEcho); return api().request({ method: "GET", path: "/x", schema: Result }); } },
            { name: "dropped connections", run: () => { server.script(drop); return api({ maxAttempts: 2 }).request({ method: "GET", path: `/x/${TOKEN}`, schema: Result }); } },
            { name: "timeout", run: () => { server.script(hang); return api({ maxAttempts: 1, timeoutMs: 100 }).request({ method: "GET", path: "/x", schema: Result }); } },
            { name: "refused connection", run: () => api({ apiBaseUrl: "http://127.0.0.1:1/client/v4", maxAttempts: 2 }).request({ method: "GET", path: "/x", schema: Result }) },
            { name: "batch token", run: () => { server.script(echo(401)); return api().request({ method: "GET", path: "/x", schema: Result, token: "batch-tok-XYZ123456" }); } },
        ];
        for (const c of cases) {
            const err = await c.run().then(() => assert.fail(`${c.name}: expected an error`), (e: unknown) => e as Error);
            assert.ok(err instanceof CloudflareApiError, `${c.name}: ${String(err)}`);
            const texts = [err.message, String(err.stack), JSON.stringify(err), util.inspect(err, { depth: 5 }),
                util.inspect(err, { depth: 5, showHidden: true })];
            for (const text of texts) {
                assert.ok(!text.includes(TOKEN), `${c.name}: token leaked in ${text}`);
                assert.ok(!text.includes("batch-tok-XYZ123456"), `${c.name}: batch token leaked in ${text}`);
            }
        }
    });

    it("rejects a missing token with an error that names the config key", () => {
        assert.throws(() => new CloudflareApi({ apiToken: "" }), /cloudflare:apiToken/);
        assert.throws(() => new CloudflareApi({ apiToken: "t", apiBaseUrl: "not a url" }), /apiBaseUrl/);
        assert.throws(() => new CloudflareApi({ apiToken: "t", rateLimit: { requests: 0, windowSeconds: 1 } }),
            /rateLimit.requests/);
    });

    it("sends JSON bodies with a JSON content type", async () => {
        server.script((req, res, body) => {
            res.writeHead(200, { "content-type": "application/json" });
            res.end(envelope({ n: JSON.parse(body.toString()).value as number }));
        });
        assert.deepEqual(await api().request({ method: "PATCH", path: "/x", json: { value: 9 }, schema: Result }), { n: 9 });
        assert.equal(server.seen[0].headers["content-type"], "application/json");
    });
});
