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
     * its start plus a window and a margin for the trip to the server (or to its end, if sooner), the margin adapting to
     * 429s (see START_MARGIN_SHARE): for short windows where latency would eat the budget and a 429 costs no block.
     */
    countFrom?: "start" | "end";
}

/*
 * With `countFrom: "start"` a slot is counted from its start plus a margin for the trip to the server (the server
 * counts a request when it arrives). The margin adapts to what the server says: it starts at
 * INITIAL_MARGIN_SHARE of the window (first requests of a process and after an idle window open connections and
 * warm up, and arrive late), halves its excess over START_MARGIN_SHARE every MARGIN_HALF_LIFE_WINDOWS windows,
 * doubles on a 429 (once per burst: requests sent under the old margin do not widen it again) and, at
 * MAX_START_MARGIN_SHARE, a further 429 pauses every caller for Retry-After as on the account API.
 * Measured against the emulator at 200/s, 64 uploads in flight on a loaded 2-core machine (bench/README.md): a fixed
 * 10% margin capped throughput at 200/1.1 = 182/s and still met 0-15 429s a run, each pausing everyone for 1 s
 * (66-89% of the limit); this rule gave 89-94% of it in the same conditions.
 */
/** The narrowest margin, as a share of the window (at most 1 s). */
export const START_MARGIN_SHARE = 0.02;
/** The margin of the first requests, and of the first after an idle window. */
export const INITIAL_MARGIN_SHARE = 0.1;
/** The widest margin a 429 can push it to; a 429 at this margin pauses every caller for Retry-After. */
export const MAX_START_MARGIN_SHARE = 0.25;
/** A 429 multiplies the margin by this. */
export const MARGIN_WIDEN_FACTOR = 2;
/** Windows in which the margin's excess over START_MARGIN_SHARE halves. */
export const MARGIN_HALF_LIFE_WINDOWS = 2;

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

/** Held while a request is in flight; release it when the response (or failure) is in. */
export interface Permit {
    /** When the limiter let the request go (its clock). */
    readonly startedAt: number;
    release(): void;
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
 *   `countFrom: "start"` it is stamped at its start plus an adaptive margin for the trip to the server instead, or
 *   at its end if that is sooner.)
 * - GCRA pacing at requests/window with a small burst, so a queue drains evenly instead of all at once and then
 *   stalling for a whole window.
 * Plus a pause (after a 429, everyone waits for Retry-After; see rateLimited) and an optional concurrency cap.
 */
export class WindowSchedule {
    private slots: Slot[] = [];
    private tat = -Infinity;
    private pausedUntil = -Infinity;
    /** Requests started and not finished (a start-stamped slot may leave the log while still in flight). */
    private active = 0;
    private budget!: Required<RateBudget>;
    /** countFrom "start": the margin as last widened, and when (it decays towards the floor from then). */
    private widenedMargin = 0;
    private widenedAt = -Infinity;

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
        this.widenedMargin = this.floorMarginMs;
    }

    private get windowMs(): number {
        return this.budget.windowSeconds * 1000;
    }

    private get floorMarginMs(): number {
        return Math.min(1000, this.windowMs * START_MARGIN_SHARE);
    }

    private get maxMarginMs(): number {
        return Math.max(this.floorMarginMs, Math.min(1000, this.windowMs * MAX_START_MARGIN_SHARE));
    }

    /** countFrom "start": the trip margin at `now` (ms); 0 for countFrom "end". */
    marginMs(now: number): number {
        if (this.budget.countFrom === "end") return 0;
        const floor = this.floorMarginMs;
        const halfLife = MARGIN_HALF_LIFE_WINDOWS * this.windowMs;
        const since = Math.max(0, now - this.widenedAt);
        return floor + (this.widenedMargin - floor) * Math.pow(0.5, since / halfLife);
    }

    /** When a slot was (or will be) counted by the server, at the latest. */
    private stamp(slot: Slot, margin: number): number {
        if (this.budget.countFrom === "end") return slot.end;
        // The server saw the request by its end at the latest, so one that answered within the margin frees sooner.
        return Math.min(slot.end, slot.start + margin);
    }

    get inFlight(): number {
        return this.active;
    }

    /** Milliseconds until a request may start (0 = now); Infinity = only when a request in flight ends. */
    waitMs(now: number): number {
        const windowMs = this.windowMs;
        const margin = this.marginMs(now);
        // Slots stay in the log while a widened margin could still count them; they count while within their stamp.
        // A slot frees strictly after stamp + window, so an inclusive server-side window cannot count it either.
        const keep = this.budget.countFrom === "end" ? 0 : this.maxMarginMs;
        this.slots = this.slots.filter((s) => this.stamp(s, keep) + windowMs >= now);
        const stamps = this.slots.map((s) => this.stamp(s, margin)).filter((at) => at + windowMs >= now);
        let wait = Math.max(0, this.pausedUntil - now);
        const inFlight = this.inFlight;
        if (inFlight >= this.budget.maxConcurrent) return Number.POSITIVE_INFINITY;
        if (stamps.length >= this.budget.requests) {
            // The slot that frees first is the one stamped earliest; in-flight slots stamped at their end free only
            // when they end.
            stamps.sort((a, b) => a - b);
            const freeing = stamps[stamps.length - this.budget.requests];
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
        if (this.budget.countFrom === "start" && this.slots.length === 0) {
            // Nothing in the log: the first request, or the first after an idle window (cold connections).
            const initial = Math.min(this.maxMarginMs, Math.max(this.floorMarginMs, this.windowMs * INITIAL_MARGIN_SHARE));
            this.widenedMargin = Math.max(this.marginMs(now), initial);
            this.widenedAt = now;
        }
        const interval = this.windowMs / this.budget.requests;
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

    /**
     * The server answered 429 to a request that started at `startedAt`, asking to wait `retryAfterMs`.
     * countFrom "end" (the account API, which blocks callers that go over): everyone waits for Retry-After.
     * countFrom "start": a request reached the server later than its margin allowed, so widen the margin (for the
     * slots in the log too), unless the request went out before the last widening (the same burst); only at the
     * widest margin does everyone wait for Retry-After.
     */
    rateLimited(now: number, retryAfterMs: number, startedAt: number): "paused" | "widened" | "ignored" {
        if (this.budget.countFrom === "end") {
            this.pause(now, retryAfterMs);
            return "paused";
        }
        if (startedAt < this.widenedAt) return "ignored";
        const margin = this.marginMs(now);
        // Within 5% of the widest margin (it decays continuously): widening would not change anything.
        if (margin >= this.maxMarginMs * 0.95) {
            this.pause(now, retryAfterMs);
            return "paused";
        }
        this.widenedMargin = Math.min(this.maxMarginMs, margin * MARGIN_WIDEN_FACTOR);
        this.widenedAt = now;
        return "widened";
    }
}

export interface RateLimiterStats {
    started: number;
    /** Starts that had to wait for the budget, a pause or the concurrency cap. */
    delayed: number;
    pauses: number;
    /** 429s that widened a start-counted budget's margin instead of pausing. */
    widenings: number;
    queued: number;
    inFlight: number;
}

/** A process-local limiter: FIFO queue of callers over a WindowSchedule. */
export class RateLimiter {
    private readonly schedule: WindowSchedule;
    private readonly queue: Array<{ grant: (p: Permit) => void; delayed: boolean }> = [];
    private cancelTimer?: () => void;
    private timerAt = Number.POSITIVE_INFINITY;
    private counts = { started: 0, delayed: 0, pauses: 0, widenings: 0 };

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

    /**
     * The server answered 429 to the request holding `permit` and asked to wait `retryAfterMs`: for a budget
     * counted to the end (the account API), every caller waits for it (as pause); for one counted from the start
     * (the batch host), see WindowSchedule.rateLimited.
     */
    rateLimited(permit: Permit, retryAfterMs: number): void {
        const outcome = this.schedule.rateLimited(this.clock.now(), retryAfterMs, permit.startedAt);
        if (outcome === "paused") this.counts.pauses++;
        if (outcome === "widened") this.counts.widenings++;
        this.pump();
    }

    /** countFrom "start": the current trip margin (ms). */
    get marginMs(): number {
        return this.schedule.marginMs(this.clock.now());
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
                startedAt: now,
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
