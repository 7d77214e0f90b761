export interface BackoffOptions {
    baseDelayMs: number;
    maxDelayMs: number;
}

/**
 * Full-jitter exponential backoff: `random() * min(maxDelayMs, baseDelayMs * 2^attempt)`, attempt counted from 0
 * (the delay after the first failure). Spreads the retries of many callers that failed together.
 */
export function backoffDelayMs(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
    const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * Math.pow(2, Math.max(0, attempt)));
    return Math.floor(random() * ceiling);
}

/**
 * Parses an HTTP `Retry-After` header: delta-seconds ("2", "1.5") or an HTTP date. Returns milliseconds from `now`
 * (never negative), or undefined when absent or unparseable.
 */
export function parseRetryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
    if (value === undefined) return undefined;
    const text = value.trim();
    if (text === "") return undefined;
    if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
    if (/^-\d/.test(text)) return undefined;
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    return Math.max(0, at - now);
}

/** The wait before the next attempt: the jittered backoff, raised to `Retry-After` when the server sent one. */
export function retryDelayMs(attempt: number, opts: BackoffOptions, retryAfterMs: number | undefined,
    random: () => number = Math.random): number {
    const jittered = backoffDelayMs(attempt, opts, random);
    return retryAfterMs === undefined ? jittered : Math.max(jittered, retryAfterMs);
}
