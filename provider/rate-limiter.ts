/** A request budget: at most `requests` in any window of `windowSeconds`. */
export interface RateBudget {
    requests: number;
    windowSeconds: number;
    /** Requests that may start back to back before pacing sets in; default ceil(requests / 10). */
    burst?: number;
    /** Requests in flight at once; default unlimited. */
    maxConcurrent?: number;
    /**
     * When a request stops counting against the window: `end` (default) holds it until its response plus a whole
     * window, safe whatever the network delay, at the price of the latency in every window; `start` holds it from
     * its start plus a window and a margin (START_MARGIN_SHARE of the window, at most 1 s) for the trip to the server: for short
     * windows where latency would eat the budget and an occasional 429 costs only a Retry-After pause.
     */
    countFrom?: "start" | "end";
}

/**
 * With `countFrom: "start"`, the share of the window added to a request's start for its trip to the server. Tried
 * against the emulator at 200/s and 64 uploads in flight on a loaded 2-core machine: 5% let 11-13 requests a run
 * arrive inside the previous window (429s, each pausing every caller for a second); 10% gave none.
 */
export const START_MARGIN_SHARE = 0.1;

/** Cloudflare allows 1,200 requests per 5 minutes per user; stay a little under it. */
export const DEFAULT_ACCOUNT_BUDGET: RateBudget = { requests: 1100, windowSeconds: 300 };
/**
 * The Images batch host allows 200 requests per second per batch token. With a 1 s window a request's own latency
 * would cost a sixth of the budget if counted to its end; a 429 there costs a short pause, not a 5-minute block.
 */
export const DEFAULT_BATCH_BUDGET: RateBudget = { requests: 200, windowSeconds: 1, countFrom: "start" };

export interface Clock {
    now(): number;
    /** Runs fn after ms; returns a function that cancels it. */
    setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
    now: () => Date.now(),
    setTimer: (fn, ms) => {
        const handle = setTimeout(fn, ms);
        return () => clearTimeout(handle);
    },
};

interface Slot {
    start: number;
    /** When the request finished; Infinity while it is in flight. */
    end: number;
}

/** Throws when a budget cannot work, naming the field. */
export function validateBudget(budget: RateBudget, name = "rateLimit"): void {
    const positiveInt = (v: number | undefined) => v === undefined || (Number.isInteger(v) && v > 0);
    if (!positiveInt(budget.requests)) {
        throw new Error(`${name}.requests must be a positive integer (got ${budget.requests})`);
    }
    if (!(typeof budget.windowSeconds === "number" && budget.windowSeconds > 0 && Number.isFinite(budget.windowSeconds))) {
        throw new Error(`${name}.windowSeconds must be a positive number of seconds (got ${budget.windowSeconds})`);
    }
    if (!positiveInt(budget.burst)) throw new Error(`${name}.burst must be a positive integer (got ${budget.burst})`);
    if (!positiveInt(budget.maxConcurrent)) {
        throw new Error(`${name}.maxConcurrent must be a positive integer (got ${budget.maxConcurrent})`);
    }
    if (budget.countFrom !== undefined && budget.countFrom !== "start" && budget.countFrom !== "end") {
        throw new Error(`${name}.countFrom must be "start" or "end" (got ${JSON.stringify(budget.countFrom)})`);
    }
}

/**
 * The pure scheduling state of a limiter (no timers, time passed in). Two rules, both must allow a start:
 * - a sliding window log: at most `requests` slots whose request is in flight or ended less than `windowSeconds`
 *   ago. A slot is stamped when its request ENDS, so the server, which sees the request somewhere between start
 *   and end, can never count more than `requests` in any window of its own, rolling or fixed. (With
 *   `countFrom: "start"` it is stamped at its start plus a margin for the trip to the server instead.)
 * - GCRA pacing at requests/window with a small burst, so a queue drains evenly instead of all at once and then
 *   stalling for a whole window.
 * Plus a pause (after a 429, everyone waits for Retry-After) and an optional concurrency cap.
 */
export class WindowSchedule {
    private slots: Slot[] = [];
    private tat = -Infinity;
    private pausedUntil = -Infinity;
    /** Requests started and not finished (a start-stamped slot may leave the log while still in flight). */
    private active = 0;
    private budget!: Required<RateBudget>;

    constructor(budget: RateBudget) {
        this.setBudget(budget);
    }

    get current(): Required<RateBudget> {
        return { ...this.budget };
    }

    setBudget(budget: RateBudget): void {
        validateBudget(budget);
        this.budget = {
            requests: budget.requests,
            windowSeconds: budget.windowSeconds,
            burst: Math.min(budget.requests, budget.burst ?? Math.ceil(budget.requests / 10)),
            maxConcurrent: budget.maxConcurrent ?? Number.POSITIVE_INFINITY,
            countFrom: budget.countFrom ?? "end",
        };
    }

    /** When a slot was (or will be) counted by the server, at the latest. */
    private stamp(slot: Slot): number {
        if (this.budget.countFrom === "end") return slot.end;
        return slot.start + Math.min(1000, this.budget.windowSeconds * 1000 * START_MARGIN_SHARE);
    }

    get inFlight(): number {
        return this.active;
    }

    /** Milliseconds until a request may start (0 = now); Infinity = only when a request in flight ends. */
    waitMs(now: number): number {
        const windowMs = this.budget.windowSeconds * 1000;
        // A slot frees strictly after end + window, so an inclusive server-side window cannot count it either.
        this.slots = this.slots.filter((s) => this.stamp(s) + windowMs >= now);
        let wait = Math.max(0, this.pausedUntil - now);
        const inFlight = this.inFlight;
        if (inFlight >= this.budget.maxConcurrent) return Number.POSITIVE_INFINITY;
        if (this.slots.length >= this.budget.requests) {
            // The slot that frees first is the one stamped earliest; in-flight slots stamped at their end free only
            // when they end.
            const ends = this.slots.map((s) => this.stamp(s)).sort((a, b) => a - b);
            const freeing = ends[this.slots.length - this.budget.requests];
            if (freeing === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
            wait = Math.max(wait, freeing + windowMs + 1 - now);
        }
        const interval = windowMs / this.budget.requests;
        const tolerance = (this.budget.burst - 1) * interval;
        wait = Math.max(wait, this.tat - tolerance - now);
        return Math.max(0, Math.ceil(wait));
    }

    /** Records a start at `now` (call only when waitMs(now) is 0). */
    start(now: number): Slot {
        const interval = (this.budget.windowSeconds * 1000) / this.budget.requests;
        this.tat = Math.max(this.tat, now) + interval;
        const slot: Slot = { start: now, end: Number.POSITIVE_INFINITY };
        this.slots.push(slot);
        this.active++;
        return slot;
    }

    finish(slot: Slot, now: number): void {
        if (slot.end !== Number.POSITIVE_INFINITY) return;
        slot.end = now;
        this.active--;
    }

    /** Nobody starts before now + ms (a 429 told us the server's count disagrees with ours). */
    pause(now: number, ms: number): void {
        this.pausedUntil = Math.max(this.pausedUntil, now + ms);
    }
}

/** Held while a request is in flight; release it when the response (or failure) is in. */
export interface Permit {
    release(): void;
}

export interface RateLimiterStats {
    started: number;
    /** Starts that had to wait for the budget, a pause or the concurrency cap. */
    delayed: number;
    pauses: number;
    queued: number;
    inFlight: number;
}

/** A process-local limiter: FIFO queue of callers over a WindowSchedule. */
export class RateLimiter {
    private readonly schedule: WindowSchedule;
    private readonly queue: Array<{ grant: (p: Permit) => void; delayed: boolean }> = [];
    private cancelTimer?: () => void;
    private timerAt = Number.POSITIVE_INFINITY;
    private counts = { started: 0, delayed: 0, pauses: 0 };

    constructor(budget: RateBudget, private readonly clock: Clock = systemClock) {
        this.schedule = new WindowSchedule(budget);
    }

    get budget(): Required<RateBudget> {
        return this.schedule.current;
    }

    setBudget(budget: RateBudget): void {
        this.schedule.setBudget(budget);
        this.pump();
    }

    acquire(): Promise<Permit> {
        return new Promise<Permit>((grant) => {
            this.queue.push({ grant, delayed: false });
            this.pump();
        });
    }

    /** Runs fn holding a permit. */
    async run<T>(fn: () => Promise<T>): Promise<T> {
        const permit = await this.acquire();
        try {
            return await fn();
        } finally {
            permit.release();
        }
    }

    /** Holds every caller sharing this limiter for ms (used on a 429, with its Retry-After). */
    pause(ms: number): void {
        this.counts.pauses++;
        this.schedule.pause(this.clock.now(), ms);
        this.pump();
    }

    stats(): RateLimiterStats {
        return { ...this.counts, queued: this.queue.length, inFlight: this.schedule.inFlight };
    }

    private pump(): void {
        while (this.queue.length > 0) {
            const now = this.clock.now();
            const wait = this.schedule.waitMs(now);
            if (wait > 0) {
                this.queue[0].delayed = true;
                if (Number.isFinite(wait)) this.wakeAt(now + wait);
                return;
            }
            const head = this.queue.shift()!;
            const slot = this.schedule.start(now);
            this.counts.started++;
            if (head.delayed) this.counts.delayed++;
            let released = false;
            head.grant({
                release: () => {
                    if (released) return;
                    released = true;
                    this.schedule.finish(slot, this.clock.now());
                    this.pump();
                },
            });
        }
    }

    private wakeAt(at: number): void {
        if (this.cancelTimer && this.timerAt <= at) return;
        this.cancelTimer?.();
        this.timerAt = at;
        this.cancelTimer = this.clock.setTimer(() => {
            this.cancelTimer = undefined;
            this.timerAt = Number.POSITIVE_INFINITY;
            this.pump();
        }, Math.max(0, at - this.clock.now()));
    }
}

// One registry per process: the dynamic provider host loads this module once (Node's require cache), so every
// resource of a deployment shares the limiter of its account.
const registry = new Map<string, { limiter: RateLimiter; configured: boolean }>();

function ratePerSecond(b: RateBudget): number {
    return b.requests / b.windowSeconds;
}

/**
 * The process-wide limiter for `key`. A configured budget replaces a default one (a client built without
 * `rateLimit` must not slow down the images of a stack that set it); between configured budgets the stricter rate
 * and the smaller concurrency cap win, so the order in which resources start does not matter.
 */
export function sharedLimiter(key: string, budget: RateBudget, opts: { isDefault?: boolean } = {}): RateLimiter {
    const configured = !opts.isDefault;
    const existing = registry.get(key);
    if (!existing) {
        const limiter = new RateLimiter(budget);
        registry.set(key, { limiter, configured });
        return limiter;
    }
    if (!configured) return existing.limiter;
    if (!existing.configured) {
        existing.configured = true;
        existing.limiter.setBudget(budget);
        return existing.limiter;
    }
    const current = existing.limiter.budget;
    const stricterRate = ratePerSecond(budget) < ratePerSecond(current);
    const cap = Math.min(budget.maxConcurrent ?? Number.POSITIVE_INFINITY, current.maxConcurrent);
    if (stricterRate || cap < current.maxConcurrent) {
        const base = stricterRate ? budget : current;
        existing.limiter.setBudget({
            requests: base.requests, windowSeconds: base.windowSeconds, burst: base.burst, countFrom: base.countFrom,
            maxConcurrent: Number.isFinite(cap) ? cap : undefined,
        });
    }
    return existing.limiter;
}
