import { strict as assert } from "assert";
import { isTransient, RetryPolicy, retryDecision } from "../../components/redirect/worker/retry";

const policy: RetryPolicy = { maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 4_000, budgetMs: 20_000, attemptTimeoutMs: 15_000 };
const NOW = Date.parse("2026-01-01T00:00:00Z");
const decide = (outcome: Parameters<typeof retryDecision>[0], attempts = 1, elapsedMs = 0, random = () => 0.5) =>
    retryDecision(outcome, attempts, elapsedMs, policy, random, NOW);

describe("redirect Worker: retry decisions for Images API calls (pure)", () => {
    it("retries 429, 5xx (524 included) and no answer; takes every other status as the answer", () => {
        for (const status of [0, 429, 500, 502, 503, 524]) assert.equal(isTransient({ status }), true, String(status));
        for (const status of [200, 400, 401, 403, 404, 409, 413, 415]) {
            assert.equal(isTransient({ status }), false, String(status));
            assert.deepEqual(decide({ status }), { retry: false });
        }
    });

    it("waits a 429's Retry-After, given in seconds or as an HTTP date", () => {
        assert.deepEqual(decide({ status: 429, retryAfter: "3" }), { retry: true, delayMs: 3_000 });
        assert.deepEqual(decide({ status: 429, retryAfter: new Date(NOW + 7_000).toUTCString() }), { retry: true, delayMs: 7_000 });
        assert.deepEqual(decide({ status: 429, retryAfter: null }, 1, 0, () => 0.5), { retry: true, delayMs: 125 }, "no header: backoff");
    });

    it("gives up at once on a Retry-After that cannot be waited out within the call's budget, and says so", () => {
        const decision = decide({ status: 429, retryAfter: "600" });
        assert.equal(decision.retry, false);
        assert.match((decision as { reason: string }).reason, /gave up after 1 attempt: Retry-After 600 s would pass the 20 s/);
        assert.equal(decide({ status: 429, retryAfter: "5" }, 2, 16_000).retry, false);
        assert.equal(decide({ status: 429, retryAfter: "5" }, 2, 14_000).retry, true);
    });

    it("backs off exponentially with full jitter on 5xx and lost answers, capped by maxDelayMs", () => {
        const ceilings = [250, 500, 1_000, 2_000];
        ceilings.forEach((ceiling, i) => {
            assert.deepEqual(decide({ status: 502 }, i + 1, 0, () => 0.999999), { retry: true, delayMs: ceiling - 1 }, `attempt ${i + 1}`);
            assert.deepEqual(decide({ status: 0 }, i + 1, 0, () => 0), { retry: true, delayMs: 0 });
        });
        const capped = retryDecision({ status: 524 }, 4, 0, { ...policy, maxAttempts: 10, maxDelayMs: 1_500 }, () => 0.999999, NOW);
        assert.deepEqual(capped, { retry: true, delayMs: 1_499 });
    });

    it("stops after maxAttempts attempts", () => {
        const decision = decide({ status: 500 }, 5);
        assert.equal(decision.retry, false);
        assert.match((decision as { reason: string }).reason, /gave up after 5 attempts/);
    });
});
