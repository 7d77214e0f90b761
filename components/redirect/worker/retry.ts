/** When the Worker retries an Images API call (pure): the Node client's schedule within a budget a webhook can wait out. */
import { parseRetryAfterMs, retryDelayMs } from "../../../provider/backoff";

export interface RetryPolicy {
    maxAttempts: number;
    baseDelayMs: number;
    maxDelayMs: number;
    /** Time one call may take, all attempts and waits included. */
    budgetMs: number;
    /** Longest single attempt. */
    attemptTimeoutMs: number;
}

export const WORKER_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 4_000, budgetMs: 20_000, attemptTimeoutMs: 15_000 };

/** The restore of a backup is the last thing between a failed re-import and a missing image: it tries longer. */
export const RESTORE_RETRY: RetryPolicy = { ...WORKER_RETRY, maxAttempts: 10, budgetMs: 30_000 };

/** What one attempt got: an HTTP status (with its Retry-After) or no answer at all (network error, timeout). */
export type AttemptOutcome = { status: number; retryAfter?: string | null } | { status: 0 };

/** 429, any 5xx (524 included) and no answer are transient; every other status is the answer. */
export const isTransient = (outcome: AttemptOutcome): boolean => outcome.status === 0 || outcome.status === 429 || outcome.status >= 500;

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason?: string };

/**
 * After `attempts` attempts (1 = the first failed) and `elapsedMs` since the call began: wait and retry, or give up.
 * A 429 waits its Retry-After (seconds or an HTTP date); one that cannot be waited out within the budget gives up at once.
 */
export function retryDecision(outcome: AttemptOutcome, attempts: number, elapsedMs: number, policy: RetryPolicy = WORKER_RETRY,
    random: () => number = Math.random, now: number = Date.now()): RetryDecision {
    if (!isTransient(outcome)) return { retry: false };
    if (attempts >= policy.maxAttempts) return { retry: false, reason: `gave up after ${attempts} attempts` };
    const retryAfterMs = outcome.status === 429 ? parseRetryAfterMs(outcome.retryAfter ?? undefined, now) : undefined;
    const delayMs = retryDelayMs(attempts - 1, policy, retryAfterMs, random);
    if (elapsedMs + delayMs >= policy.budgetMs) {
        const wait = retryAfterMs !== undefined ? `Retry-After ${Math.ceil(retryAfterMs / 1000)} s` : `the next wait (${delayMs} ms)`;
        return { retry: false, reason: `gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${wait} would pass the ${policy.budgetMs / 1000} s a webhook call may take` };
    }
    return { retry: true, delayMs };
}
