import { START_MARGIN_SHARE } from "../provider/rate-limiter";
import { blockedMs, startEmulator, type Emulator, type EmulatorOptions } from "../test/emulator";
import { startBenchImageOrigin, type ImageOrigin } from "./image-origin";
import { errorMessage, round, type TableRow } from "./report";
import type { SectionContext, SectionResult } from "./section";
import { runSdkPLimit } from "./tools/sdk-plimit";
import { runSeedScript, type ToolOutcome } from "./tools/seed-script";
import { prepareSourcingKit } from "./tools/sourcing-kit";

export type Setting = "account-limit" | "batch-api";
export type Tool = "sourcing-kit" | "seed-script" | "sdk-plimit";

/**
 * The account API limit of issue 7, scaled from 1,200 / 300 s to 120 / 30 s so a run takes minutes; strict as
 * Cloudflare's: the request over it blocks the token for the window (30 s here, 5 minutes on Cloudflare).
 */
export const ACCOUNT_LIMIT = { requests: 120, windowSeconds: 30, mode: "strict" as const };
export const BATCH_REQUESTS_PER_SECOND = 200;
/** sourcing-kit:rateLimit as a user would set it for this limit: the default's ratio (1,100 of 1,200). */
export const SOURCING_KIT_BUDGET = { requests: 110, windowSeconds: 30 };
export const ENGINE_PARALLELISM = 8;
const UPLOAD_LATENCY_MS: [number, number] = [50, 300];
const MEAN_UPLOAD_LATENCY_MS = (UPLOAD_LATENCY_MS[0] + UPLOAD_LATENCY_MS[1]) / 2;

export interface ThroughputRow {
    setting: Setting;
    tool: Tool;
    images: number;
    seconds: number;
    imagesPerSecond: number;
    /** Accepted requests on the path the tool uploads through, per second, over that path's limit per second. */
    limitShare: number;
    http429: number;
    /** The emulator's account limit mode (strict: going over blocks the token for a window). */
    accountLimitMode: "strict" | "lenient";
    /** Account-limit blocks the tool's token ran into, and the seconds they kept it out during the run. */
    blocks: number;
    blockedSeconds: number;
    /** Non-429 answers on the upload path. */
    accepted: number;
    failed: number;
    duplicated: number;
    /** Which limit limitShare is measured against. */
    uploadPath: "account" | "batch";
    requests: number;
    /** Every request made on the upload path (429s included) per second, over the path's limit per second. */
    requestShare?: number;
    /** Peak requests one token sent in any rate window (429s included), over the window's budget, on the upload path. */
    peakWindowShare: number;
    parallelism?: number;
    /** Little's law: at most `parallelism` uploads in flight, each taking the mean injected latency. */
    parallelismCeiling?: number;
    /** Requests per second the provider's limiter allows at most: budget / (how long it holds a slot). */
    limiterCeiling?: number;
    /** CPU seconds over the run: this whole process (emulators, origin, the other tools running meanwhile) and the provider host. */
    benchProcessCpuSeconds?: number;
    providerHostCpuSeconds?: number;
    /** Seconds before the first upload (provider host start, implementation load); not in `seconds`. */
    startupSeconds?: number;
    /** When the run started (rows of separate runs are merged into one results.json). */
    measuredAt?: string;
    error?: string;
}

interface RunSpec {
    setting: Setting;
    tool: Tool;
    /** The naive tools upload through the account API unless they are written for the batch host. */
    uploadPath: "account" | "batch";
    parallelism?: number;
    /** Start only when the run with this key has finished. */
    after?: string;
}

const keyOf = (s: RunSpec) => `${s.setting}/${s.tool}/p${s.parallelism ?? 0}`;
const BATCH_P8 = `batch-api/sourcing-kit/p${ENGINE_PARALLELISM}`;

const SPECS: RunSpec[] = [
    { setting: "account-limit", tool: "sourcing-kit", uploadPath: "account", parallelism: ENGINE_PARALLELISM },
    { setting: "account-limit", tool: "seed-script", uploadPath: "account" },
    { setting: "account-limit", tool: "sdk-plimit", uploadPath: "account" },
    { setting: "batch-api", tool: "sourcing-kit", uploadPath: "batch", parallelism: ENGINE_PARALLELISM },
    { setting: "batch-api", tool: "seed-script", uploadPath: "batch" },
    // The SDK has no batch-host support: in this setting it still goes through the account API.
    { setting: "batch-api", tool: "sdk-plimit", uploadPath: "account" },
];

/**
 * Section 1: every (setting, tool) run at once, in this process, each against its own emulator instance started
 * with the same options (so the emulator's counters are per tool), all fetching from one loopback image origin.
 * sourcing-kit runs in the real dynamic provider host (one per run, configured from stack config).
 */
export async function run(ctx: SectionContext): Promise<SectionResult> {
    const images = ctx.scaled(Number(process.env.BENCH_THROUGHPUT_IMAGES ?? 2000));
    const extraParallelism = Number(process.env.BENCH_BATCH_PARALLELISM ?? 64);
    const specs = [...SPECS];
    // An extra row: the batch limit is out of reach at the engine's default parallelism (see README), so also
    // `pulumi up --parallel N`. It starts once the parallel-8 batch run is done, so the two do not share the CPU.
    if (extraParallelism > 0) specs.push({ setting: "batch-api", tool: "sourcing-kit", uploadPath: "batch", parallelism: extraParallelism, after: BATCH_P8 });
    const filter = (process.env.BENCH_THROUGHPUT_RUNS ?? "").split(",").filter(Boolean);
    if (filter.length) specs.splice(0, specs.length, ...specs.filter((s) => filter.some((f) => keyOf(s).startsWith(f))));
    const timeoutMs = Number(process.env.BENCH_THROUGHPUT_TIMEOUT_S ?? 1200) * 1000;
    const origin = await startBenchImageOrigin();
    try {
        ctx.log(`throughput: ${specs.length} runs of ${images} images at once`);
        const running = new Map<string, Promise<ThroughputRow>>();
        for (const spec of specs) {
            const before = spec.after ? running.get(spec.after) : undefined;
            running.set(keyOf(spec), (before ?? Promise.resolve()).then(() => measure(spec, images, origin, timeoutMs, ctx)));
        }
        const rows = await Promise.all(running.values());
        return { json: rows, rows: rows.map(tableRow) };
    } finally {
        await origin.close();
    }
}

async function measure(spec: RunSpec, images: number, origin: ImageOrigin, timeoutMs: number, ctx: SectionContext): Promise<ThroughputRow> {
    const tag = `${spec.setting}-${spec.tool}-p${spec.parallelism ?? 0}`;
    const opts: EmulatorOptions = {
        accountId: `acc-${tag}`,
        tokens: [`token-${tag}`],
        accountHash: `hash-${tag}`,
        rateLimit: ACCOUNT_LIMIT,
        batch: { requestsPerSecond: BATCH_REQUESTS_PER_SECOND },
        faults: { latencyMs: UPLOAD_LATENCY_MS, routes: "writes" },
    };
    const row: ThroughputRow = {
        setting: spec.setting,
        tool: spec.tool,
        images,
        seconds: 0,
        imagesPerSecond: 0,
        limitShare: 0,
        http429: 0,
        accountLimitMode: ACCOUNT_LIMIT.mode,
        blocks: 0,
        blockedSeconds: 0,
        accepted: 0,
        failed: images,
        duplicated: 0,
        uploadPath: spec.uploadPath,
        requests: 0,
        peakWindowShare: 0,
        ...(spec.parallelism ? { parallelism: spec.parallelism } : {}),
    };
    let emulator: Emulator | undefined;
    try {
        emulator = await startEmulator(opts);
        const urls = Array.from({ length: images }, (_, i) => `${origin.baseUrl}/${tag}/photos/img-${i}.png`);
        const preparing = process.hrtime.bigint();
        const go = await prepareTool(spec, emulator, opts, urls);
        row.startupSeconds = round(Number(process.hrtime.bigint() - preparing) / 1e9, 1);
        const started = process.hrtime.bigint();
        row.measuredAt = new Date().toISOString();
        const cpu = process.cpuUsage();
        const outcome = await withTimeout(go(), timeoutMs, tag);
        row.seconds = round(Number(process.hrtime.bigint() - started) / 1e9, 1);
        const used = process.cpuUsage(cpu);
        row.benchProcessCpuSeconds = round((used.user + used.system) / 1e6, 1);
        if (outcome.childCpuSeconds !== undefined) row.providerHostCpuSeconds = outcome.childCpuSeconds;
        if (spec.parallelism) {
            row.parallelismCeiling = round(spec.parallelism / (MEAN_UPLOAD_LATENCY_MS / 1000), 1);
            // How long the provider's limiter holds a slot (provider/rate-limiter.ts): the account budget from a
            // request's start to a window after its end; the batch budget a window plus a margin from its start, at
            // most (the margin adapts to 429s; this is the ceiling at its narrowest).
            row.limiterCeiling =
                spec.uploadPath === "batch"
                    ? round(BATCH_REQUESTS_PER_SECOND / (1 + START_MARGIN_SHARE), 2)
                    : round(SOURCING_KIT_BUDGET.requests / (SOURCING_KIT_BUDGET.windowSeconds + MEAN_UPLOAD_LATENCY_MS / 1000), 2);
        }
        Object.assign(row, account(emulator, urls, spec.uploadPath, row.seconds));
        if (outcome.failed !== row.failed) ctx.log(`${tag}: the tool reports ${outcome.failed} failed, the emulator's store ${row.failed}`);
        ctx.log(`${tag}: ${row.imagesPerSecond} images/s, share ${row.limitShare}, 429s ${row.http429}, failed ${row.failed}`);
    } catch (err) {
        row.error = errorMessage(err);
        if (emulator) Object.assign(row, account(emulator, [], spec.uploadPath, row.seconds || 1), { failed: images });
        ctx.log(`${tag}: error ${row.error}`);
    } finally {
        await emulator?.close();
    }
    return row;
}

/** Everything a tool does before its first upload (e.g. starting the provider host); the clock starts after it. */
async function prepareTool(spec: RunSpec, emulator: Emulator, opts: EmulatorOptions, urls: string[]): Promise<() => Promise<ToolOutcome>> {
    const common = { apiBaseUrl: emulator.baseUrl, accountId: emulator.accountId, apiToken: opts.tokens![0], urls };
    switch (spec.tool) {
        case "seed-script":
            return () => runSeedScript({ ...common, batchBaseUrl: spec.uploadPath === "batch" ? emulator.batchBaseUrl : undefined });
        case "sdk-plimit":
            return () => runSdkPLimit(common);
        case "sourcing-kit":
            return prepareSourcingKit({
                ...common,
                useBatchApi: spec.uploadPath === "batch",
                rateLimit: SOURCING_KIT_BUDGET,
                parallelism: spec.parallelism ?? ENGINE_PARALLELISM,
                idPrefix: `bench/${spec.setting}`,
            });
    }
}

/**
 * The emulator's view of a run. failed = desired source URLs not stored; duplicated = images stored beyond one per
 * desired source URL (an upload that landed twice, under whatever id) plus images under an unexpected source.
 */
function account(emulator: Emulator, urls: string[], uploadPath: "account" | "batch", seconds: number): Partial<ThroughputRow> {
    const desired = new Set(urls);
    const stored = new Map<string, number>();
    let stray = 0;
    for (const image of emulator.images.values()) {
        if (image.sourceUrl && desired.has(image.sourceUrl)) stored.set(image.sourceUrl, (stored.get(image.sourceUrl) ?? 0) + 1);
        else stray++;
    }
    let extra = stray;
    for (const n of stored.values()) extra += n - 1;
    const c = emulator.counters;
    let accepted = 0;
    for (const [label, n] of Object.entries(c.byRoute)) {
        const onBatch = label.startsWith("batch ");
        if ((uploadPath === "batch") === onBatch && !label.endsWith(" 429")) accepted += n;
    }
    const limitPerSecond = uploadPath === "batch" ? BATCH_REQUESTS_PER_SECOND : ACCOUNT_LIMIT.requests / ACCOUNT_LIMIT.windowSeconds;
    return {
        imagesPerSecond: round(stored.size / seconds, 2),
        limitShare: round(accepted / seconds / limitPerSecond, 3),
        http429: c.http429,
        accepted,
        blocks: c.rateLimitBlocks,
        blockedSeconds: round(blockedMs(emulator.rateLimitBlocks, Date.now()) / 1000, 1),
        failed: urls.length ? urls.length - stored.size : undefined,
        duplicated: extra,
        requests: c.requests,
        requestShare: round((uploadPath === "batch" ? accepted + batch429(c) : c.requests) / seconds / limitPerSecond, 3),
        peakWindowShare:
            uploadPath === "batch"
                ? round((c.maxBatchRequestsInSecond ?? 0) / BATCH_REQUESTS_PER_SECOND, 3)
                : round(c.maxRequestsInWindow / ACCOUNT_LIMIT.requests, 3),
    };
}

function batch429(c: Emulator["counters"]): number {
    return Object.entries(c.byRoute).reduce((sum, [label, n]) => sum + (label.startsWith("batch ") && label.endsWith(" 429") ? n : 0), 0);
}

function tableRow(r: ThroughputRow): TableRow {
    const p = r.parallelism ? ` (parallel ${r.parallelism})` : "";
    const via = r.setting === "batch-api" && r.uploadPath === "account" ? " via account API" : "";
    const caseName = `${r.setting} / ${r.tool}${p}${via}`;
    let figures =
        `${r.imagesPerSecond} img/s, ${Math.round(r.limitShare * 100)}% of ${r.uploadPath === "batch" ? "200/s" : "120/30s"}, ` +
        `${r.http429}x429${r.blocks ? ` (${r.blocks} blocks, ${r.blockedSeconds} s blocked)` : ""}, ${r.failed} failed, ${r.duplicated} dup (${r.images} in ${r.seconds} s)`;
    if (r.error) return { section: "throughput", caseName, result: `error: ${r.error}; ${figures}`, target: "-", met: "error" };
    if (r.tool !== "sourcing-kit") return { section: "throughput", caseName, result: figures, target: "reported beside sourcing-kit", met: "n/a" };
    if (r.parallelismCeiling !== undefined && r.limiterCeiling !== undefined) {
        figures += `; ceilings: ${r.parallelismCeiling} img/s from parallelism/latency, ${r.limiterCeiling} from the limiter`;
    }
    // Below a few windows' worth of images the first window's budget inflates the share: no verdict.
    const minImages = 5 * (r.uploadPath === "batch" ? BATCH_REQUESTS_PER_SECOND : ACCOUNT_LIMIT.requests);
    if (r.images < minImages) return { section: "throughput", caseName, result: figures, target: `needs >= ${minImages} images for a verdict`, met: "n/a" };
    const zero429 = r.setting === "account-limit" ? r.http429 === 0 : true;
    const met = r.limitShare >= 0.9 && zero429 && r.failed === 0 && r.duplicated === 0;
    const target = r.setting === "account-limit" ? ">=90% of limit, 0x429, 0 failed/dup" : ">=90% of limit, 0 failed/dup";
    return { section: "throughput", caseName, result: figures, target, met: met ? "yes" : "no" };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s (BENCH_THROUGHPUT_TIMEOUT_S)`)), ms);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
