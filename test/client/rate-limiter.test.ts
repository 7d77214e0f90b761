import { strict as assert } from "assert";
import {
    Clock, INITIAL_MARGIN_SHARE, MAX_START_MARGIN_SHARE, Permit, RateBudget, RateLimiter, sharedLimiter, START_MARGIN_SHARE,
    WindowSchedule,
} from "../../provider/rate-limiter";
import { TokenRateLimiter } from "../emulator/rate-limiter";
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

/** The next caller to acquire starts exactly at `at` (virtual ms), not a millisecond before. */
async function nextStartsAt(limiter: RateLimiter, clock: VirtualClock, at: number): Promise<void> {
    let startedAt: number | undefined;
    void limiter.acquire().then((p) => {
        startedAt = p.startedAt;
        p.release();
    });
    await clock.advanceTo(at - 1);
    assert.equal(startedAt, undefined);
    await clock.advanceTo(at);
    assert.equal(startedAt, at);
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

    it("keeps a server counting on arrival (the emulator's strict account limit) under its limit whatever the network delay", async () => {
        // Budget 100 / 10 s against a server allowing 120 / 10 s; each request reaches the server at a random
        // moment between its start and its end.
        const random = seededRandom(42);
        const runs = await simulate({ requests: 100, windowSeconds: 10 }, Array(300).fill(0),
            Array.from({ length: 300 }, () => 20 + Math.floor(random() * 300)));
        const server = new TokenRateLimiter({ requests: 120, windowSeconds: 10 });
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
        const server = new TokenRateLimiter({ requests: 200, windowSeconds: 1, mode: "lenient" });
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

    it("with countFrom start, frees the slot of a request that answered within the margin a window after its end", () => {
        const schedule = new WindowSchedule({ requests: 2, windowSeconds: 1, burst: 2, countFrom: "start" });
        const a = schedule.start(0);
        const b = schedule.start(0);
        assert.equal(schedule.marginMs(0), 1000 * INITIAL_MARGIN_SHARE);
        // a answered after 10 ms: the server had it by then, whatever the margin says.
        schedule.finish(a, 10);
        schedule.finish(b, 500);
        assert.equal(schedule.waitMs(10), 1001);
        assert.equal(schedule.waitMs(1011), 0);
    });

    it("with countFrom start, narrows the margin from its initial width to the floor, and widens it again after an idle window", () => {
        const schedule = new WindowSchedule({ requests: 100, windowSeconds: 1, countFrom: "start" });
        schedule.finish(schedule.start(0), 50);
        assert.equal(schedule.marginMs(0), 1000 * INITIAL_MARGIN_SHARE);
        assert.ok(schedule.marginMs(2_000) < 1000 * INITIAL_MARGIN_SHARE, "narrower after a half-life");
        assert.ok(Math.abs(schedule.marginMs(60_000) - 1000 * START_MARGIN_SHARE) < 0.01, "back to the floor");
        assert.equal(schedule.waitMs(60_000), 0);
        schedule.start(60_000); // the log emptied meanwhile: cold again
        assert.equal(schedule.marginMs(60_000), 1000 * INITIAL_MARGIN_SHARE);
    });

    it("answers a 429 on a start-counted budget by widening the margin once per burst, and pauses only at the widest", async () => {
        const clock = new VirtualClock();
        const limiter = new RateLimiter({ requests: 100, windowSeconds: 1, countFrom: "start" }, clock);
        const early = [await limiter.acquire(), await limiter.acquire()];
        for (const p of early) p.release();
        await clock.advanceTo(100);
        const before = limiter.marginMs;
        limiter.rateLimited(early[0], 1000);
        assert.ok(Math.abs(limiter.marginMs - 2 * before) < 0.01, `margin ${limiter.marginMs} after ${before}`);
        limiter.rateLimited(early[1], 1000); // sent under the old margin: the same burst
        assert.deepEqual([limiter.stats().widenings, limiter.stats().pauses], [1, 0]);
        // Nobody waits for Retry-After: the next request goes out at once.
        const next = await limiter.acquire();
        assert.equal(next.startedAt, 100);
        next.release();
        await clock.advanceTo(200);
        limiter.rateLimited(next, 1000);
        assert.equal(limiter.marginMs, 1000 * MAX_START_MARGIN_SHARE);
        assert.deepEqual([limiter.stats().widenings, limiter.stats().pauses], [2, 0]);
        const last = await limiter.acquire();
        last.release();
        await clock.advanceTo(300);
        limiter.rateLimited(last, 1000); // a 429 at the widest margin: everyone waits for Retry-After
        assert.deepEqual([limiter.stats().widenings, limiter.stats().pauses], [2, 1]);
        await nextStartsAt(limiter, clock, 1300);
    });

    it("answers a 429 on an end-counted budget (the account API) by pausing everyone for Retry-After", async () => {
        const clock = new VirtualClock();
        const limiter = new RateLimiter({ requests: 100, windowSeconds: 10 }, clock);
        const permit = await limiter.acquire();
        permit.release();
        limiter.rateLimited(permit, 5000);
        assert.deepEqual([limiter.stats().widenings, limiter.stats().pauses], [0, 1]);
        await nextStartsAt(limiter, clock, 5000);
    });

    it("with countFrom start, converges near the limit of a server counting on arrival when trips take longer than the narrowest margin", async () => {
        // 64 callers upload 3,000 images through a 200 / 1 s budget to a server allowing 200 in any second, counted
        // when a request arrives: 0-100 ms after its start (5 times the narrowest margin), answered 50-300 ms later.
        // A 429 (Retry-After 1 s) is retried by its caller after a second, as the client does.
        const random = seededRandom(11);
        const clock = new VirtualClock();
        const limiter = new RateLimiter({ requests: 200, windowSeconds: 1, countFrom: "start" }, clock);
        const server = new TokenRateLimiter({ requests: 200, windowSeconds: 1, mode: "lenient" });
        const sleep = (ms: number) => new Promise<void>((resolve) => clock.setTimer(resolve, ms));
        let next = 0;
        let rejected = 0;
        let finished = 0;
        const images = 3000;
        const upload = async (): Promise<void> => {
            for (;;) {
                const permit: Permit = await limiter.acquire();
                await sleep(Math.floor(random() * 101));
                const decision = server.take("batch", clock.now());
                await sleep(50 + Math.floor(random() * 251));
                permit.release();
                if (decision.allowed) return;
                rejected++;
                limiter.rateLimited(permit, 1000);
                await sleep(1000);
            }
        };
        const callers = Array.from({ length: 64 }, async () => {
            while (next < images) {
                next++;
                await upload();
                finished++;
            }
        });
        let guard = 0;
        while (finished < images && guard++ < 100_000) await clock.advanceTo(clock.now() + 10);
        await Promise.all(callers);
        const rate = images / (clock.now() / 1000);
        // A fixed 10% margin caps the rate at 200 / 1.1 = 182/s; every 429 paused everyone for a second.
        assert.ok(rate >= 185, `${rate.toFixed(1)} images/s, ${rejected} x 429`);
        assert.ok(rejected <= images * 0.02, `${rejected} x 429`);
        assert.equal(limiter.stats().pauses, 0);
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
