import { strict as assert } from "assert";
import { z } from "zod";
import { backoffDelayMs, parseRetryAfterMs, retryDelayMs } from "../../provider/backoff";
import { CloudflareApiError, FileTooLargeError, formatApiErrorMessage, redact } from "../../provider/errors";
import { buildUrl, interpretNetworkError, interpretResponse } from "../../provider/http";
import { batchTokenRefreshAt, defaultBatchBaseUrl, imagePath, isImageNotFound } from "../../provider/images-client";

const opts = { baseDelayMs: 500, maxDelayMs: 30_000 };

describe("client/backoff: full-jitter schedule and Retry-After", () => {
    it("draws each delay uniformly below min(max, base * 2^attempt)", () => {
        const almostOne = () => 0.999999;
        const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 20].map((a) => backoffDelayMs(a, opts, almostOne));
        assert.deepEqual(ceilings, [499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
        for (let a = 0; a < 10; a++) assert.equal(backoffDelayMs(a, opts, () => 0), 0);
        assert.equal(backoffDelayMs(3, opts, () => 0.5), 2000);
    });

    it("spreads delays over the whole range with the real random source", () => {
        const draws = Array.from({ length: 2000 }, () => backoffDelayMs(2, opts));
        assert.ok(draws.every((d) => d >= 0 && d < 2000));
        assert.ok(draws.some((d) => d < 200) && draws.some((d) => d > 1800), "not full jitter");
    });

    it("parses Retry-After as seconds or an HTTP date, and ignores junk", () => {
        const now = Date.parse("2026-01-01T00:00:00Z");
        const cases: Array<[string | undefined, number | undefined]> = [
            ["2", 2000], ["0", 0], [" 120 ", 120_000], ["1.5", 1500],
            ["Thu, 01 Jan 2026 00:00:05 GMT", 5000], ["Wed, 31 Dec 2025 23:59:00 GMT", 0],
            [undefined, undefined], ["", undefined], ["soon", undefined], ["-3", undefined],
        ];
        for (const [value, expected] of cases) assert.equal(parseRetryAfterMs(value, now), expected, String(value));
    });

    it("uses Retry-After as a lower bound on the jittered delay", () => {
        assert.equal(retryDelayMs(0, opts, 2000, () => 0.9), 2000);
        assert.equal(retryDelayMs(6, opts, 2000, () => 0.9), 27000);
        assert.equal(retryDelayMs(0, opts, undefined, () => 0.5), 250);
    });
});

describe("client/errors: messages and redaction", () => {
    it("redacts every occurrence of every secret, longest first, ignoring empty ones", () => {
        assert.equal(redact("a tok b tok-long c", ["tok", "tok-long", undefined, ""]), "a [secret] b [secret] c");
        assert.equal(redact("nothing here", []), "nothing here");
    });

    it("formats method, path, status, codes and attempts", () => {
        assert.equal(formatApiErrorMessage({ method: "POST", path: "/accounts/a/images/v1", status: 409,
            errors: [{ code: 5409, message: "Resource already exists" }] }),
        "POST /accounts/a/images/v1: HTTP 409, code 5409: Resource already exists");
        assert.equal(formatApiErrorMessage({ method: "GET", path: "/x", detail: "network error ECONNRESET", attempts: 8 }),
            "GET /x: network error ECONNRESET (after 8 attempts)");
    });

    it("builds a CloudflareApiError with codes, a not-found test and a clean JSON form", () => {
        const err = new CloudflareApiError({ method: "GET", path: "/accounts/a/images/v1/x", status: 404, retryable: false,
            errors: [{ code: 5404, message: "Image not found for secret-token" }], secrets: ["secret-token"] });
        assert.ok(err.hasCode(5404) && !err.hasCode(5409));
        assert.ok(err.isNotFound);
        assert.deepEqual(err.codes, [5404]);
        assert.equal(err.errors[0].message, "Image not found for [secret]");
        assert.equal(JSON.parse(JSON.stringify(err)).status, 404);
        assert.ok(!JSON.stringify(err).includes("secret-token"));
    });

    it("tells an image that is gone from a wrong route (7003) or account", () => {
        const make = (status: number, codes: number[]) => new CloudflareApiError({ method: "GET", path: "/x", status,
            retryable: false, errors: codes.map((code) => ({ code, message: "m" })) });
        assert.ok(isImageNotFound(make(404, [5404])));
        assert.ok(isImageNotFound(make(404, [])));
        assert.ok(!isImageNotFound(make(404, [7003])));
        assert.ok(!isImageNotFound(make(403, [9109])));
        assert.ok(!isImageNotFound(new Error("404")));
    });

    it("explains a file over 10 MB with the path, size and what to do", () => {
        const err = new FileTooLargeError("/data/big.png", 10_485_761, 10_485_760);
        assert.match(err.message, /\/data\/big\.png.*10485761 bytes.*10485760/);
    });
});

describe("client/http: envelope and failure interpretation (pure)", () => {
    const Schema = z.object({ id: z.string() });
    const env = (o: unknown) => JSON.stringify(o);

    it("returns the parsed result of a successful envelope", () => {
        assert.deepEqual(interpretResponse(200, {}, env({ success: true, errors: [], messages: [], result: { id: "a" } }),
            Schema), { ok: true, value: { id: "a" } });
    });

    it("turns a 4xx envelope into a non-retryable failure with its codes", () => {
        const out = interpretResponse(409, {}, env({ success: false, errors: [{ code: 5409, message: "exists" }],
            messages: [], result: null }), Schema);
        assert.deepEqual(out, { ok: false, status: 409, errors: [{ code: 5409, message: "exists" }], detail: undefined,
            retryable: false, notApplied: false, retryAfterMs: undefined });
    });

    it("marks 429 retryable and not applied, with its Retry-After", () => {
        const out = interpretResponse(429, { "retry-after": "3" }, env({ success: false,
            errors: [{ code: 971, message: "slow" }], result: null }), Schema);
        assert.ok(!out.ok && out.retryable && out.notApplied && out.retryAfterMs === 3000);
    });

    it("marks 5xx retryable, keeping a snippet of a non-JSON body", () => {
        const out = interpretResponse(524, {}, "<html>  A timeout\n occurred </html>", Schema);
        assert.ok(!out.ok && out.retryable && !out.notApplied);
        assert.equal(!out.ok && out.detail, "<html> A timeout occurred </html>");
    });

    it("rejects a 200 that is not an envelope, or whose result has the wrong shape", () => {
        const notEnvelope = interpretResponse(200, {}, "<html>captive portal</html>", Schema);
        assert.ok(!notEnvelope.ok && !notEnvelope.retryable && /not a Cloudflare API envelope/.test(notEnvelope.detail!));
        const wrong = interpretResponse(200, {}, env({ success: true, errors: [], result: { id: 5 } }), Schema);
        assert.ok(!wrong.ok && /unexpected result shape \(id: /.test(wrong.detail!));
    });

    it("classifies network failures", () => {
        assert.ok(interpretNetworkError("ECONNRESET", "read ECONNRESET").retryable);
        const hangUp = interpretNetworkError(undefined, "socket hang up");
        assert.ok(hangUp.retryable && !hangUp.ok && hangUp.networkCode === "ECONNRESET");
        const refused = interpretNetworkError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1");
        assert.ok(refused.retryable && !refused.ok && refused.notApplied);
        assert.ok(!interpretNetworkError("ENOTFOUND", "getaddrinfo ENOTFOUND nowhere.invalid").retryable);
        assert.ok(interpretNetworkError("ERR_BAD_RESPONSE", "stream has been aborted").retryable);
        assert.ok(!interpretNetworkError("ERR_BAD_RESPONSE", "maxContentLength size of 67108864 exceeded").retryable);
        const timeout = interpretNetworkError(undefined, "canceled", 30_000);
        assert.ok(timeout.retryable && !timeout.ok && /no response within 30000 ms/.test(timeout.detail!));
    });

    it("builds URLs with encoded ids and without undefined query values", () => {
        assert.equal(buildUrl("http://h/client/v4", `/accounts/a/images/v1/${imagePath("dir/a b%.png")}`,
            { per_page: 10, continuation_token: undefined }),
        "http://h/client/v4/accounts/a/images/v1/dir%2Fa%20b%25.png?per_page=10");
    });
});

describe("client/images: batch host and token timing (pure)", () => {
    it("uses batch.imagedelivery.net for the real API and <origin>/batch otherwise", () => {
        assert.equal(defaultBatchBaseUrl("https://api.cloudflare.com/client/v4"), "https://batch.imagedelivery.net");
        assert.equal(defaultBatchBaseUrl("https://api.cloudflare.com/client/v4/"), "https://batch.imagedelivery.net");
        assert.equal(defaultBatchBaseUrl("http://127.0.0.1:8787/client/v4"), "http://127.0.0.1:8787/batch");
    });

    it("refreshes a batch token a fifth of its life (at most 60 s) before it expires", () => {
        const now = Date.parse("2026-01-01T00:00:00Z");
        assert.equal(batchTokenRefreshAt("2026-01-01T01:00:00.000000000Z", now), now + 3600_000 - 60_000);
        assert.equal(batchTokenRefreshAt("2026-01-01T00:00:10Z", now), now + 8000);
        assert.equal(batchTokenRefreshAt("garbage", now), now + 60_000);
    });
});
