import { spawn } from "child_process";
import * as path from "path";
import { errorMessage, round, type TableRow } from "./report";
import type { SectionContext, SectionResult } from "./section";

export interface PlanRow {
    images: number;
    seconds: number;
    peakRssMb: number;
    /** Peak RSS over images, KB (includes the fixed cost of node + @pulumi/pulumi). */
    rssKbPerImage?: number;
    /** Against the previous size: plain ratios, and the cost of each added image (fixed start-up cost removed). */
    timeRatio?: number;
    rssRatio?: number;
    marginalMsPerImage?: number;
    marginalRssKbPerImage?: number;
    /** Marginal cost per image over the previous step's marginal cost (1 = linear growth). */
    marginalTimeGrowth?: number;
    marginalRssGrowth?: number;
    /** Measured without the process-wide Error.stackTraceLimit = 0 the other rows use. */
    programDefaults?: boolean;
    error?: string;
}

export interface PlanChildResult {
    images: number;
    planned: number;
    registered: number;
    seconds: number;
    peakRssMb: number;
    providerBytes: number;
    sample?: { name: string; type: string; inputs: Record<string, unknown> };
    error?: string;
}

const PROJECT_ROOT = path.resolve(__dirname, "..");

/** What the plan child declares, shaped like a real stack: a 32-hex account id, a 40-character secret token. */
export const PLAN_ACCOUNT_ID = "023e105f4ecef8ad9ca31a8372d0c353";
export const PLAN_ACCOUNT_HASH = "ZWd9g1K7eljCn_KDTu_MWA";
export const PLAN_API_TOKEN_LENGTH = 40;
export const PLAN_IMAGE_ORIGIN = "https://images.example.com";

/** Runs bench/plan-child.ts for one size in a fresh node process and returns its JSON line. */
export function runPlanChild(images: number, extraArgs: string[] = [], timeoutMs = 900_000): Promise<PlanChildResult> {
    const heapMb = Number(process.env.BENCH_PLAN_HEAP_MB ?? 12288);
    const args = ["--openssl-legacy-provider", `--max-old-space-size=${heapMb}`, "-r", "ts-node/register/transpile-only", path.join(__dirname, "plan-child.ts"), String(images), ...extraArgs];
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            const line = out.trim().split("\n").reverse().find((l) => l.startsWith("{"));
            if (line) {
                const parsed = JSON.parse(line) as PlanChildResult;
                if (parsed.error) reject(new Error(parsed.error));
                else resolve(parsed);
                return;
            }
            const why = signal ? `killed by ${signal}${signal === "SIGKILL" ? ` (timeout ${timeoutMs / 1000} s or out of memory)` : ""}` : `exit code ${code}`;
            reject(new Error(`plan child for ${images} images: ${why}; ${lastLine(err)}`));
        });
    });
}

/**
 * Section 2: MigratedImageSet of 1,000 / 10,000 / 50,000 urls under mocks, one fresh process per size, with
 * Error.stackTraceLimit = 0 process-wide (DESIGN.md); then 10,000 again as a program runs it, without that.
 */
export async function run(ctx: SectionContext): Promise<SectionResult> {
    const sizes = [1_000, 10_000, 50_000].map((n) => ctx.scaled(n));
    const rows: PlanRow[] = [];
    for (const images of sizes) {
        ctx.log(`plan: ${images} images`);
        try {
            const r = await runPlanChild(images);
            if (r.registered !== images) throw new Error(`${r.registered} of ${images} images registered (planned ${r.planned})`);
            rows.push({ images, seconds: round(r.seconds, 2), peakRssMb: round(r.peakRssMb, 0), rssKbPerImage: round((r.peakRssMb * 1024) / images, 1) });
        } catch (err) {
            rows.push({ images, seconds: 0, peakRssMb: 0, error: errorMessage(err) });
        }
    }
    for (let i = 1; i < rows.length; i++) {
        const [a, b] = [rows[i - 1], rows[i]];
        if (a.error || b.error) continue;
        const added = b.images - a.images;
        b.timeRatio = round(b.seconds / a.seconds, 2);
        b.rssRatio = round(b.peakRssMb / a.peakRssMb, 2);
        b.marginalMsPerImage = round(((b.seconds - a.seconds) * 1000) / added, 3);
        b.marginalRssKbPerImage = round(((b.peakRssMb - a.peakRssMb) * 1024) / added, 1);
        if (a.marginalMsPerImage !== undefined && a.marginalRssKbPerImage !== undefined) {
            b.marginalTimeGrowth = round(b.marginalMsPerImage / a.marginalMsPerImage, 2);
            b.marginalRssGrowth = round(b.marginalRssKbPerImage / a.marginalRssKbPerImage, 2);
        }
    }
    // The target size once more as a program runs it: no process-wide Error.stackTraceLimit = 0.
    const asProgram: PlanRow = { images: sizes[1], seconds: 0, peakRssMb: 0, programDefaults: true };
    ctx.log(`plan: ${sizes[1]} images, program defaults`);
    try {
        const r = await runPlanChild(sizes[1], ["--program-defaults"]);
        Object.assign(asProgram, { seconds: round(r.seconds, 2), peakRssMb: round(r.peakRssMb, 0) });
    } catch (err) {
        asProgram.error = errorMessage(err);
    }
    return { json: [...rows, asProgram], rows: [...rows, asProgram].map((r) => tableRow(r, sizes[1])) };
}

function tableRow(r: PlanRow, targetSize: number): TableRow {
    const caseName = `MigratedImageSet ${r.images} urls (mocks${r.programDefaults ? ", program defaults" : ", stackTraceLimit 0"})`;
    if (r.error) return { section: "plan", caseName, result: `error: ${r.error}`, target: "-", met: "error" };
    const growth =
        r.timeRatio !== undefined
            ? `; vs previous size x${r.timeRatio} time, x${r.rssRatio} RSS; each added image ${r.marginalMsPerImage} ms, ${r.marginalRssKbPerImage} KB`
            : "";
    const result = `${r.seconds} s, peak RSS ${r.peakRssMb} MB${growth}`;
    if (r.images === targetSize) {
        return { section: "plan", caseName, result, target: "< 60 s and < 1.5 GB RSS", met: r.seconds < 60 && r.peakRssMb < 1536 ? "yes" : "no" };
    }
    // Per-image costs from steps of a few hundred images are noise (RSS moves in GC-sized jumps): no verdict.
    if (r.marginalTimeGrowth !== undefined && targetSize < 5_000) {
        return { section: "plan", caseName, result, target: "linear (verdict needs the default sizes)", met: "n/a" };
    }
    if (r.marginalTimeGrowth !== undefined) {
        const linear = r.marginalTimeGrowth <= 1.25 && (r.marginalRssGrowth ?? 0) <= 1.25;
        return {
            section: "plan",
            caseName,
            result: `${result} (x${r.marginalTimeGrowth} time, x${r.marginalRssGrowth} RSS per added image vs the previous step)`,
            target: "linear: cost per added image <= 1.25x the previous step's",
            met: linear ? "yes" : "no",
        };
    }
    return { section: "plan", caseName, result, target: "-", met: "n/a" };
}

function lastLine(text: string): string {
    const lines = text.trim().split("\n").filter((l) => !/Warning|trace-warnings|trace-deprecation/.test(l));
    return (lines[lines.length - 1] ?? "").slice(0, 300);
}
