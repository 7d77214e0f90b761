import { strict as assert } from "assert";
import { Clock, RateBudget, RateLimiter, sharedLimiter, WindowSchedule } from "../../provider/rate-limiter";
import { SlidingWindowLimiter } from "../emulator/rate-limiter";
import { seededRandom } from "../emulator/faults";

/** A clock whose time moves only when the test says so; timers fire in order as it advances. */
class VirtualClock implements Clock {
    t = 0;
    private timers: Array<{ at: number; fn: () => void; seq: number }> = [];
    private seq = 0;

    now(): number {
        return this.t;
    }

    setTimer(fn: () => void, ms: number): () => void {
        const timer = { at: this.t + ms, fn, seq: this.seq++ };
        this.timers.push(timer);
        return () => {
            this.timers = this.timers.filter((x) => x !== timer);
        };
    }

    /** Advances to `until`, firing due timers (and letting promise callbacks run after each). */
    async advanceTo(until: number): Promise<void> {
        for (;;) {
            await flush();
            this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
            const next = this.timers[0];
            if (!next || next.at > until) break;
            this.timers.shift();
            this.t = Math.max(this.t, next.at);
            next.fn();
        }
        this.t = Math.max(this.t, until);
        await flush();
    }
}

async function flush(): Promise<void> {
    for (let i = 0; i < 10; i++) await Promise.resolve();
}

interface Run { start: number; end: number }

/**
 * Drives `count` callers through a limiter on a virtual clock: caller i asks at arrivals[i] and holds its permit for
 * durations[i] ms. Returns each request's start and end.
 */
async function simulate(budget: RateBudget, arrivals: number[], durations: number[]): Promise<Run[]> {
    const clock = new VirtualClock();
    const limiter = new RateLimiter(budget, clock);
    const runs: Run[] = [];
    const done: Promise<void>[] = [];
    const order = arrivals.map((at, i) => ({ at, i })).sort((a, b) => a.at - b.at);
    for (const { at, i } of order) {
        await clock.advanceTo(at);
        done.push(limiter.acquire().then((permit) => {
            const run: Run = { start: clock.now(), end: clock.now() + durations[i] };
            runs.push(run);
            clock.setTimer(() => permit.release(), durations[i]);
        }));
    }
    let guard = 0;
    while (runs.length < arrivals.length && guard++ < 1_000_000) await clock.advanceTo(clock.now() + 50);
    await Promise.all(done);
    return runs;
}

describe("client/rate-limiter: sliding window log with even pacing (virtual clock)", () => {
    it("never lets more than `requests` be in flight or end within one window of a start", async () => {
        for (const seed of [1, 2, 3]) {
            const random = seededRandom(seed);
            const budget = { requests: 20, windowSeconds: 1 };
            const arrivals = Array.from({ length: 150 }, () => Math.floor(random() * 4000));
            const durations = Array.from({ length: 150 }, () => Math.floor(random() * 400));
            const runs = await simulate(budget, arrivals, durations);
            assert.equal(runs.length, 150);
            for (const r of runs) {
                const counted = runs.filter((o) => o !== r && o.start <= r.start && o.end + 1000 >= r.start).length;
                assert.ok(counted < budget.requests, `seed ${seed}: ${counted + 1} requests in one window at ${r.start}`);
            }
        }
    });

    it("keeps a server-side sliding window (the emulator's) under its limit whatever the network delay", async () => {
        // Budget 100 / 10 s against a server allowing 120 / 10 s; each request reaches the server at a random
        // moment between its start and its end.
        const random = seededRandom(42);
        const runs = await simulate({ requests: 100, windowSeconds: 10 }, Array(300).fill(0),
            Array.from({ length: 300 }, () => 20 + Math.floor(random() * 300)));
        const server = new SlidingWindowLimiter({ requests: 120, windowSeconds: 10 });
        const arrivalsAtServer = runs.map((r) => r.start + Math.floor(random() * (r.end - r.start + 1)))
            .sort((a, b) => a - b);
        for (const at of arrivalsAtServer) assert.deepEqual(server.take("token", at), { allowed: true });
        assert.ok(server.maxRequestsInWindow <= 100, `server saw ${server.maxRequestsInWindow} in a window`);
    });

    it("with countFrom start, keeps a server that counts on arrival under its limit and uses the budget whatever the latency", async () => {
        // 600 requests of 100-300 ms against 200 / 1 s: stamped at their end, the latency would cost about a sixth.
        const random = seededRandom(7);
        const budget = { requests: 200, windowSeconds: 1, countFrom: "start" as const };
        const runs = await simulate(budget, Array(600).fill(0), Array.from({ length: 600 }, () => 100 + Math.floor(random() * 200)));
        const server = new SlidingWindowLimiter({ requests: 200, windowSeconds: 1 });
        // A request reaches the server within a few milliseconds of its start (the margin allows for much more).
        const arrivals = runs.map((r) => r.start + Math.floor(random() * 5)).sort((a, b) => a - b);
        for (const at of arrivals) assert.deepEqual(server.take("batch", at), { allowed: true });
        const last = Math.max(...runs.map((r) => r.start));
        // 600 at 200/s with a 100 ms margin per window: 3 windows of 1.1 s; stamped at the end it took 3.4 s.
        assert.ok(last <= 3_200, `last start at ${last}`);
    });

    it("with countFrom start, still caps requests in flight when their slots have left the log", async () => {
        const clock = new VirtualClock();
        const limiter = new RateLimiter({ requests: 1000, windowSeconds: 1, burst: 1000, maxConcurrent: 2, countFrom: "start" }, clock);
        const permits: Array<{ release(): void }> = [];
        for (let i = 0; i < 3; i++) void limiter.acquire().then((p) => permits.push(p));
        await clock.advanceTo(10_000);
        assert.equal(permits.length, 2, "two long requests in flight long after their window");
        permits[0].release();
        await clock.advanceTo(10_001);
        assert.equal(permits.length, 3);
    });

    it("paces a queue evenly after a small burst instead of sending a whole window at once", async () => {
        const runs = await simulate({ requests: 100, windowSeconds: 10, burst: 10 }, Array(100).fill(0), Array(100).fill(0));
        const starts = runs.map((r) => r.start).sort((a, b) => a - b);
        assert.deepEqual(starts.slice(0, 10), Array(10).fill(0));
        assert.equal(starts[10], 100);
        assert.equal(starts[11], 200);
        assert.equal(starts[99], 9000);
    });

    it("uses the whole budget: a long queue runs at requests/window", async () => {
        const runs = await simulate({ requests: 50, windowSeconds: 2 }, Array(500).fill(0), Array(500).fill(5));
        const last = Math.max(...runs.map((r) => r.start));
        // 500 requests at 25/s need about 20 s; the log adds at most (duration + 1 ms) per window.
        assert.ok(last <= 20_500, `last start at ${last}`);
        assert.ok(last >= 18_000, `last start at ${last}`);
    });

    it("holds everyone during a pause (a 429's Retry-After)", async () => {
        const clock = new VirtualClock();
        const limiter = new RateLimiter({ requests: 100, windowSeconds: 1 }, clock);
        limiter.pause(2000);
        let startedAt: number | undefined;
        void limiter.acquire().then((p) => {
            startedAt = clock.now();
            p.release();
        });
        await clock.advanceTo(1999);
        assert.equal(startedAt, undefined);
        await clock.advanceTo(2000);
        assert.equal(startedAt, 2000);
        assert.equal(limiter.stats().pauses, 1);
    });

    it("caps requests in flight with maxConcurrent", async () => {
        const clock = new VirtualClock();
        const limiter = new RateLimiter({ requests: 1000, windowSeconds: 1, burst: 1000, maxConcurrent: 2 }, clock);
        const permits: Array<{ release(): void }> = [];
        for (let i = 0; i < 3; i++) void limiter.acquire().then((p) => permits.push(p));
        await clock.advanceTo(10_000);
        assert.equal(permits.length, 2);
        permits[0].release();
        await clock.advanceTo(10_001);
        assert.equal(permits.length, 3);
    });

    it("waits for an in-flight request to end when the window is full of in-flight requests", () => {
        const schedule = new WindowSchedule({ requests: 2, windowSeconds: 1, burst: 2 });
        const a = schedule.start(0);
        schedule.start(0);
        assert.equal(schedule.waitMs(5000), Number.POSITIVE_INFINITY);
        schedule.finish(a, 5000);
        assert.equal(schedule.waitMs(5000), 1001);
        assert.equal(schedule.waitMs(6001), 0);
    });

    it("shares one limiter per key in the process; a stricter budget tightens it, a looser one does not", () => {
        const a = sharedLimiter("rate-limiter-test-key", { requests: 100, windowSeconds: 10 });
        const b = sharedLimiter("rate-limiter-test-key", { requests: 1000, windowSeconds: 10 });
        assert.equal(a, b);
        assert.equal(a.budget.requests, 100);
        sharedLimiter("rate-limiter-test-key", { requests: 50, windowSeconds: 10, maxConcurrent: 4 });
        assert.equal(a.budget.requests, 50);
        assert.equal(a.budget.maxConcurrent, 4);
        assert.notEqual(sharedLimiter("rate-limiter-test-other", { requests: 100, windowSeconds: 10 }), a);
    });

    it("lets a configured budget replace a default one, and never the other way round", () => {
        const key = "rate-limiter-test-default";
        const a = sharedLimiter(key, { requests: 1100, windowSeconds: 300 }, { isDefault: true });
        assert.equal(sharedLimiter(key, { requests: 5000, windowSeconds: 300 }), a);
        assert.equal(a.budget.requests, 5000);
        sharedLimiter(key, { requests: 1100, windowSeconds: 300 }, { isDefault: true });
        assert.equal(a.budget.requests, 5000);
    });

    it("rejects budgets that cannot work, naming the field", () => {
        assert.throws(() => new RateLimiter({ requests: 1.5, windowSeconds: 1 }), /rateLimit\.requests/);
        assert.throws(() => new RateLimiter({ requests: 5, windowSeconds: 0 }), /rateLimit\.windowSeconds/);
        assert.throws(() => new RateLimiter({ requests: 5, windowSeconds: 1, maxConcurrent: 0 }), /rateLimit\.maxConcurrent/);
        assert.throws(() => new RateLimiter({ requests: 5, windowSeconds: 1, countFrom: "arrival" as never }), /rateLimit\.countFrom/);
    });
});
