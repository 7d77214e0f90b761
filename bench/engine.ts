// Real-engine rows: `pulumi preview` and `pulumi up` with the real CLI (test/engine's harness) at 1,000 and 10,000
// images against the emulator with its limits lifted; wall time and peak memory of the CLI, language host and
// provider host together; bytes per image in the real state file; batch-API throughput at the CLI's default
// parallelism and at --parallel 64. Beside the projections of the plan and state sections.
import { promises as fs } from "fs";
import * as path from "path";
import { startEmulator } from "../test/emulator";
import { startImageOrigin } from "../test/emulator/fixtures";
import { findPulumiCli } from "../test/engine/cli";
import { descendants, EngineProject } from "../test/engine/project";
import { readResults } from "./report";
import type { TableRow } from "./report";
import type { SectionContext, SectionResult } from "./section";

const TOKEN = "bench-engine-token";
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Sum of VmRSS (KB) of a process and all its descendants. */
export async function treeRssKb(pid: number): Promise<number> {
    let total = 0;
    for (const p of [pid, ...descendants(pid)]) {
        try {
            const status = await fs.readFile(`/proc/${p}/status`, "utf8");
            total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        } catch {
            // ended meanwhile
        }
    }
    return total;
}

export interface Measured {
    seconds: number;
    peakRssMb: number;
    /** Each role's own peak (they need not peak at once, so these add up to more than peakRssMb). */
    peakRssMbByRole: Record<string, number>;
    code: number | null;
    /** CPU seconds (user + system) by process role (cli, language host, program, provider host), from /proc. */
    cpuSeconds: Record<string, number>;
    stdout: string;
}

/** A measurement as results.json keeps it (without the command's output). */
export function figures(m: Measured): Omit<Measured, "stdout"> {
    const { stdout: _stdout, ...rest } = m;
    return rest;
}

/** The part a process plays in a `pulumi` run, from its command line. */
export function processRole(cmdline: string[]): string {
    const [exe = "", ...args] = cmdline;
    const name = path.basename(exe);
    if (name === "pulumi") return "cli";
    if (name.startsWith("pulumi-language-")) return "language host";
    if (name.startsWith("pulumi-resource-")) return "provider host";
    const script = args.find((a) => !a.startsWith("-")) ?? "";
    if (/dynamic-provider|pulumi-resource-pulumi-nodejs|provider/.test(args.join(" "))) return "provider host";
    if (name === "node" && script) return "program";
    return name;
}

interface TreeSample { rssKb: number; rssKbByRole: Record<string, number> }

/** One look at the tree: RSS in all and per role, and each process's utime + stime (clock ticks) into `cpu`. */
async function sampleTree(pid: number, cpu: Map<number, { role: string; ticks: number }>): Promise<TreeSample> {
    const sample: TreeSample = { rssKb: 0, rssKbByRole: {} };
    for (const p of [pid, ...descendants(pid)]) {
        try {
            const [status, stat] = await Promise.all([fs.readFile(`/proc/${p}/status`, "utf8"), fs.readFile(`/proc/${p}/stat`, "utf8")]);
            const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
            const ticks = Number(fields[11]) + Number(fields[12]);
            const known = cpu.get(p);
            const role = known?.role ?? processRole((await fs.readFile(`/proc/${p}/cmdline`, "utf8")).split("\0").filter(Boolean));
            cpu.set(p, { role, ticks: Math.max(ticks, known?.ticks ?? 0) });
            const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
            sample.rssKb += rss;
            sample.rssKbByRole[role] = (sample.rssKbByRole[role] ?? 0) + rss;
        } catch {
            // ended meanwhile
        }
    }
    return sample;
}

/** Runs one `pulumi` command, sampling the memory and CPU of its whole process tree every 250 ms. */
export async function measure(project: EngineProject, args: string[], env: Record<string, string | undefined> = {}, options: { allowFailure?: boolean } = {}): Promise<Measured> {
    const started = Date.now();
    const run = project.start(args, { env });
    let peak = 0;
    const peakByRole: Record<string, number> = {};
    let sampling = true;
    let sampleErrors = 0;
    const cpu = new Map<number, { role: string; ticks: number }>();
    const sampler = (async () => {
        while (sampling) {
            try {
                if (run.child.pid) {
                    const sample = await sampleTree(run.child.pid, cpu);
                    peak = Math.max(peak, sample.rssKb);
                    for (const [role, kb] of Object.entries(sample.rssKbByRole)) peakByRole[role] = Math.max(peakByRole[role] ?? 0, kb);
                }
            } catch (e) {
                // A missed sample (e.g. EMFILE while the emulator holds thousands of sockets) must not end the run.
                if (!sampleErrors++) process.stderr.write(`measure: a sample of the process tree failed: ${(e as Error).message}\n`);
            }
            await new Promise((resolve) => setTimeout(resolve, 250));
        }
    })();
    const result = await run.done;
    sampling = false;
    await sampler;
    if (result.code !== 0 && !options.allowFailure) throw new Error(`pulumi ${args.join(" ")} exited ${result.code}: ${result.stderr.slice(-2000)}${result.stdout.slice(-2000)}`);
    const cpuSeconds: Record<string, number> = {};
    for (const { role, ticks } of cpu.values()) cpuSeconds[role] = round((cpuSeconds[role] ?? 0) + ticks / 100);
    const peakRssMbByRole = Object.fromEntries(Object.entries(peakByRole).filter(([, kb]) => kb > 10_240).map(([role, kb]) => [role, Math.round(kb / 1024)]));
    return { seconds: round((Date.now() - started) / 1000), peakRssMb: Math.round(peak / 1024), peakRssMbByRole, code: result.code, cpuSeconds, stdout: result.stdout };
}

async function manifestStack(project: EngineProject, stack: string, n: number, originUrl: (p: string) => string, config: Record<string, unknown>) {
    const rows = Array.from({ length: n }, (_, i) => JSON.stringify({ url: originUrl(`/img/${i}.png`), id: `${i}.png`, hash: `h${i}` }));
    await project.writeFile(`${stack}.ndjson`, rows.join("\n") + "\n");
    await project.initStack(stack, { ...config, "sourcing-kit:sources": [{ kind: "manifest", name: "bench", path: `${stack}.ndjson`, idPrefix: stack }] });
}

export async function run(ctx: SectionContext): Promise<SectionResult> {
    const cli = findPulumiCli();
    if (!("dir" in cli)) throw new Error(`no Pulumi CLI (${cli.missing}); run scripts/pulumi-cli.sh`);
    const emu = await startEmulator({ tokens: [TOKEN], rateLimit: { requests: 10_000_000, windowSeconds: 300 }, allowedImages: 10_000_000 });
    const origin = await startImageOrigin();
    const project = await EngineProject.create({ env: { CLOUDFLARE_API_TOKEN: TOKEN } });
    const base = {
        "sourcing-kit:apiBaseUrl": emu.baseUrl,
        "sourcing-kit:accountId": emu.accountId,
        "sourcing-kit:accountHash": emu.accountHash,
        "sourcing-kit:scopedToken": false,
        "sourcing-kit:rateLimit": { requests: 10_000_000, windowSeconds: 300 },
    };
    const rows: TableRow[] = [];
    const json: Record<string, unknown> = { cli: "pulumi v3.248.0, language host v3.68.0 (sdk/v3), file backend" };
    const previous = readResults(path.join(__dirname, "results.json")) as { state?: { bytesPerImage?: number; resourceBytesIndented?: number; projectedStateMb10k?: number }; plan?: { images: number; seconds: number; peakRssMb: number }[] };
    try {
        const sizes = [ctx.scaled(1_000), ctx.scaled(10_000)];
        const scale: Record<string, unknown>[] = [];
        for (const n of sizes) {
            const stack = `s${n}`;
            await manifestStack(project, stack, n, (p) => origin.url(p), base);
            ctx.log(`engine: preview of ${n} images`);
            const preview = await measure(project, ["preview", "-s", stack, "--json"]);
            // The file backend rewrites the whole state file after every step (O(N^2) bytes): the README's large-migration
            // advice is PULUMI_SKIP_CHECKPOINTS=true past a few thousand images, so that is how the 10,000 run goes.
            const skipCheckpoints = n > 2_000;
            ctx.log(`engine: up of ${n} images${skipCheckpoints ? " (PULUMI_SKIP_CHECKPOINTS=true)" : ""}`);
            emu.resetCounters();
            const up = await measure(project, ["up", "-s", stack, "--yes", "--skip-preview"], skipCheckpoints ? { PULUMI_SKIP_CHECKPOINTS: "true" } : {});
            const stateBytes = (await fs.stat(project.stateFile(stack))).size;
            const images = (await project.stateImages(stack)).size;
            ctx.log(`engine: no-op preview of ${n} images`);
            const again = await measure(project, ["preview", "-s", stack, "--json", "--expect-no-changes"]);
            const projectedPlan = previous.plan?.find((p) => p.images === n);
            const row = {
                images: n, recorded: images, uploads: emu.counters.uploads,
                preview: figures(preview), up: figures(up), noChangePreview: figures(again), skipCheckpoints,
                stateFileBytes: stateBytes, stateBytesPerImage: Math.round(stateBytes / n),
                imagesPerSecond: round(n / up.seconds),
                projected: { programUnderMocksSeconds: projectedPlan?.seconds, programUnderMocksPeakRssMb: projectedPlan?.peakRssMb, stateBytesPerImage: previous.state?.resourceBytesIndented },
            };
            scale.push(row);
            rows.push({ section: "engine", caseName: `preview ${n.toLocaleString("en-US")} images`, result: `${preview.seconds} s, ${preview.peakRssMb} MB peak (mocks projection: ${projectedPlan ? `${projectedPlan.seconds} s, ${projectedPlan.peakRssMb} MB` : "n/a"})`, target: n >= 10_000 ? "< 60 s, < 1.5 GB" : "-", met: n >= 10_000 ? (preview.seconds < 60 && preview.peakRssMb < 1536 ? "yes" : "no") : "n/a" });
            rows.push({ section: "engine", caseName: `up ${n.toLocaleString("en-US")} images${skipCheckpoints ? " (skip checkpoints)" : ""}`, result: `${up.seconds} s (${row.imagesPerSecond}/s), ${up.peakRssMb} MB peak, ${images} recorded`, target: "-", met: "n/a" });
            rows.push({ section: "engine", caseName: `state ${n.toLocaleString("en-US")} images`, result: `${round(stateBytes / 1e6)} MB file, ${row.stateBytesPerImage} B/image (projected ${previous.state?.resourceBytesIndented ?? "n/a"} B/image)`, target: "-", met: "n/a" });
            rows.push({ section: "engine", caseName: `no-op preview ${n.toLocaleString("en-US")}`, result: `${again.seconds} s, ${again.peakRssMb} MB peak`, target: "-", met: "n/a" });
            ctx.log(`engine: destroy of ${n} images`);
            await measure(project, ["destroy", "-s", stack, "--yes", "--skip-preview"], { PULUMI_SKIP_CHECKPOINTS: "true" });
        }
        json.scale = scale;

        // Batch API: 200 requests/s per batch token, as Cloudflare documents; the CLI's default parallelism and 64.
        const batchRows: Record<string, unknown>[] = [];
        const n = ctx.scaled(1_000);
        for (const parallel of [undefined, 64]) {
            const stack = `batch${parallel ?? "default"}`;
            await manifestStack(project, stack, n, (p) => origin.url(p), { ...base, "sourcing-kit:useBatchApi": true });
            emu.resetCounters();
            ctx.log(`engine: batch API up of ${n} images at --parallel ${parallel ?? "default"}`);
            const up = await measure(project, ["up", "-s", stack, "--yes", "--skip-preview", ...(parallel ? ["--parallel", String(parallel)] : [])], { PULUMI_SKIP_CHECKPOINTS: "true" });
            const times = [...emu.images.values()].filter((img) => img.id.startsWith(`${stack}/`)).map((img) => Date.parse(img.uploaded)).sort((a, b) => a - b);
            const phaseSeconds = (times[times.length - 1] - times[0]) / 1000;
            const rate = round((times.length - 1) / phaseSeconds);
            batchRows.push({ parallel: parallel ?? "default", images: n, uploads: emu.counters.uploads, wallSeconds: up.seconds, uploadPhaseSeconds: round(phaseSeconds), imagesPerSecond: rate, percentOf200: round(rate / 2), maxBatchRequestsInSecond: emu.counters.maxBatchRequestsInSecond, peakRssMb: up.peakRssMb });
            rows.push({ section: "engine", caseName: `batch API up ${n.toLocaleString("en-US")}, --parallel ${parallel ?? "default"}`, result: `${rate} images/s over the upload phase (${round(rate / 2)}% of 200/s), ${up.seconds} s wall`, target: "-", met: "n/a" });
            await measure(project, ["destroy", "-s", stack, "--yes", "--skip-preview"], { PULUMI_SKIP_CHECKPOINTS: "true" });
        }
        json.batch = batchRows;
        json.notes = [
            "peak memory: VmRSS summed over pulumi and every process it started (language host, node program, dynamic provider host), sampled every 250 ms",
            "up above 2,000 images runs with PULUMI_SKIP_CHECKPOINTS=true (README, large migrations); the 1,000-image up writes every checkpoint",
            "projections: the plan section runs the program under mocks; the state section sizes one resource as `pulumi stack export` prints it",
        ];
        return { json, rows };
    } finally {
        await project.close();
        await origin.close();
        await emu.close();
    }
}
