// Sliding-window rate limiter keyed by token (pure: the clock is passed in).

export interface RateBudget {
  requests: number;
  windowSeconds: number;
  /** true: rejected requests also use up the budget (Cloudflare's "blocked for the window" behaviour). Default false. */
  countRejected?: boolean;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

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

  /** The k-th oldest stamp in the window (0-based); call count() first. */
  nth(k: number): number {
    return this.stamps[this.head + k];
  }
}

export class SlidingWindowLimiter {
  private readonly counted = new Map<string, WindowLog>();
  private readonly seen = new Map<string, WindowLog>();
  /** Peak number of requests (accepted or not) any one key sent within one window. */
  maxRequestsInWindow = 0;

  constructor(private budget: RateBudget) {}

  setBudget(budget: RateBudget): void {
    this.budget = budget;
    this.counted.clear();
    this.seen.clear();
  }

  getBudget(): RateBudget {
    return this.budget;
  }

  resetPeak(): void {
    this.maxRequestsInWindow = 0;
  }

  /** Records one request for `key` at `now` (ms) and decides whether it is accepted. */
  take(key: string, now: number): RateDecision {
    const windowMs = this.budget.windowSeconds * 1000;
    const seen = logFor(this.seen, key);
    seen.add(now);
    this.maxRequestsInWindow = Math.max(this.maxRequestsInWindow, seen.count(now, windowMs));

    const log = logFor(this.counted, key);
    const inWindow = log.count(now, windowMs);
    if (inWindow < this.budget.requests) {
      log.add(now);
      return { allowed: true };
    }
    if (this.budget.countRejected) log.add(now);
    // A request is accepted again once enough of the oldest stamps have left the window.
    const total = log.count(now, windowMs);
    const freeAt = log.nth(total - this.budget.requests) + windowMs;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((freeAt - now) / 1000)) };
  }
}

function logFor(map: Map<string, WindowLog>, key: string): WindowLog {
  let log = map.get(key);
  if (!log) {
    log = new WindowLog();
    map.set(key, log);
  }
  return log;
}
