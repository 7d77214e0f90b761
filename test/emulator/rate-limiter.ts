// Rate limiter keyed by token, strict (Cloudflare's block) or lenient (a sliding window); pure: the clock is passed in.

/**
 * strict: going over blocks the key for a whole window, every request answered 429 until it ends, then the count
 * starts afresh (Cloudflare's account limit). lenient: a sliding window only, a request is accepted again as soon as
 * the oldest accepted one leaves the window (the batch host's per-second limit).
 */
export type RateLimitMode = "strict" | "lenient";

export interface RateBudget {
  requests: number;
  windowSeconds: number;
  /** Default "strict". */
  mode?: RateLimitMode;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** A strict block: `key` answered 429 from `from` to `until` (ms, the limiter's clock). */
export interface RateBlock {
  key: string;
  from: number;
  until: number;
}

/** Timestamps (ms) inside the window, oldest first; trimmed lazily. */
class WindowLog {
  private stamps: number[] = [];
  private head = 0;

  add(now: number): void {
    this.stamps.push(now);
  }

  count(now: number, windowMs: number): number {
    while (this.head < this.stamps.length && this.stamps[this.head] <= now - windowMs) this.head++;
    if (this.head > 1024 && this.head * 2 > this.stamps.length) {
      this.stamps = this.stamps.slice(this.head);
      this.head = 0;
    }
    return this.stamps.length - this.head;
  }

  /** The oldest stamp in the window; call count() first. */
  oldest(): number {
    return this.stamps[this.head];
  }
}

const retryAfter = (ms: number): RateDecision => ({ allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(ms / 1000)) });

export class TokenRateLimiter {
  private readonly accepted = new Map<string, WindowLog>();
  private readonly seen = new Map<string, WindowLog>();
  private readonly blockedUntil = new Map<string, number>();
  /** Peak number of requests (accepted or not) any one key sent within one window. */
  maxRequestsInWindow = 0;
  /** Every strict block started since the last resetStats, oldest first. */
  readonly blocks: RateBlock[] = [];

  constructor(private budget: RateBudget) {}

  /** A new budget; every key starts afresh (no count, no block). */
  setBudget(budget: RateBudget): void {
    this.budget = budget;
    this.accepted.clear();
    this.seen.clear();
    this.blockedUntil.clear();
  }

  getBudget(): RateBudget {
    return this.budget;
  }

  /** Clears the peak and the record of blocks; a block under way goes on. */
  resetStats(): void {
    this.maxRequestsInWindow = 0;
    this.blocks.length = 0;
  }

  /** Records one request for `key` at `now` (ms) and decides whether it is accepted. */
  take(key: string, now: number): RateDecision {
    const windowMs = this.budget.windowSeconds * 1000;
    const seen = logFor(this.seen, key);
    seen.add(now);
    this.maxRequestsInWindow = Math.max(this.maxRequestsInWindow, seen.count(now, windowMs));

    const strict = (this.budget.mode ?? "strict") === "strict";
    const until = this.blockedUntil.get(key);
    if (until !== undefined) {
      if (now < until) return retryAfter(until - now);
      this.blockedUntil.delete(key);
      this.accepted.delete(key);
    }
    const log = logFor(this.accepted, key);
    if (log.count(now, windowMs) < this.budget.requests) {
      log.add(now);
      return { allowed: true };
    }
    if (strict) {
      this.blockedUntil.set(key, now + windowMs);
      this.blocks.push({ key, from: now, until: now + windowMs });
      return retryAfter(windowMs);
    }
    return retryAfter(log.oldest() + windowMs - now);
  }
}

/** How long blocks kept their keys out up to `now` (ms), a block under way counted to `now`. */
export function blockedMs(blocks: readonly RateBlock[], now: number): number {
  return blocks.reduce((sum, b) => sum + Math.max(0, Math.min(b.until, now) - b.from), 0);
}

function logFor(map: Map<string, WindowLog>, key: string): WindowLog {
  let log = map.get(key);
  if (!log) {
    log = new WindowLog();
    map.set(key, log);
  }
  return log;
}
