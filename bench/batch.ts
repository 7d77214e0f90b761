// Batch mode with the real CLI (issue 12): sourcing-kit:mode batch, the batch API on, the emulator holding each batch
// token to 200 requests/s. 100,000 images in one up, a re-run, 1% changed at the source, 4 partition stacks at once,
// batch against per-image mode at 10,000, and batch sizes 500 / 1,000 / 2,000 at 20,000.
// BENCH_BATCH_PARTS=full,partitions,crossover,sizes,skip,memlimit runs a subset (default all, in that order); the parts not run
// keep their figures and rows from results.json.
import { promises as fs } from "fs";
import { Emulator, startEmulator } from "../test/emulator";
import { ImageOrigin, pngBytes, startImageOrigin } from "../test/emulator/fixtures";
import { findPulumiCli } from "../test/engine/cli";
import { EngineProject } from "../test/engine/project";
import { figures, Measured, measure } from "./engine";
import * as path from "path";
import { errorMessage, readResults, round } from "./report";
import type { TableRow } from "./report";
import type { SectionContext, SectionResult } from "./section";

const TOKENS = [0, 1, 2, 3].map((i) => `bench-batch-token-${i}`);
const BATCH_RPS = 200;
const PARTS = ["full", "partitions", "crossover", "sizes", "skip", "memlimit"] as const;
type Part = (typeof PARTS)[number];

/** One library: `n` images of a manifest under `prefix/`, served by the origin at /img/<i>.png. */
interface Library { prefix: string; n: number; file: string }

const count = (n: number) => n.toLocaleString("en-US");
const mb = (bytes: number) => round(bytes / 1e6, 1);

/** The bytes of image `i` in version `v` (a change at the source gives new bytes and a new hash). */
const imagePath = (i: number, v: number) => (v === 0 ? `/img/${i}.png` : `/v${v}/${i}.png`);

async function writeManifest(project: EngineProject, origin: ImageOrigin, lib: Library, version: (i: number) => number = () => 0) {
    const rows: string[] = [];
    for (let i = 0; i < lib.n; i++) {
        const v = version(i);
        if (v !== 0) origin.register(imagePath(i, v), { body: pngBytes(i + v * 10_000_000), contentType: "image/png" });
        rows.push(JSON.stringify({ url: origin.url(imagePath(i, v)), id: `${i}.png`, hash: `h${i}-v${v}` }));
    }
    await project.writeFile(lib.file, rows.join("\n") + "\n");
}

/** Uploads of the library's images over the up: the upload phase is first to last upload the emulator recorded. */
function uploadPhase(emu: Emulator, prefix: string, since: number) {
    const times = [...emu.images.values()].filter((img) => img.id.startsWith(`${prefix}/`)).map((img) => Date.parse(img.uploaded)).filter((t) => t >= since).sort((a, b) => a - b);
    const seconds = times.length > 1 ? (times[times.length - 1]! - times[0]!) / 1000 : 0;
    const rate = seconds > 0 ? (times.length - 1) / seconds : 0;
    return { uploaded: times.length, seconds: round(seconds, 1), imagesPerSecond: round(rate, 1), first: times[0], last: times[times.length - 1] };
}

const writes = (emu: Emulator) => emu.counters.uploads + emu.counters.deletes + emu.counters.patches;
const imagesUnder = (emu: Emulator, prefix: string) => [...emu.images.keys()].filter((id) => id.startsWith(`${prefix}/`));

/** The image IDs `pulumi preview --diff` shows as changed: `~ <prefix>/<id>: {` lines inside a batch's images. */
export function changedIdsInDiff(text: string, prefix: string): string[] {
    const ids = new Set<string>();
    const re = new RegExp(`^\\s*~\\s+"?(${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/[^":\\s]+)"?\\s*:`, "gm");
    for (const m of text.matchAll(re)) ids.add(m[1]!);
    return [...ids].sort();
}

export async function run(ctx: SectionContext): Promise<SectionResult> {
    const cli = findPulumiCli();
    if (!("dir" in cli)) throw new Error(`no Pulumi CLI (${cli.missing}); run scripts/pulumi-cli.sh`);
    const wanted = (process.env.BENCH_BATCH_PARTS ?? PARTS.join(",")).split(",").map((s) => s.trim()).filter(Boolean);
    const unknown = wanted.filter((p) => !(PARTS as readonly string[]).includes(p));
    if (unknown.length) throw new Error(`BENCH_BATCH_PARTS: unknown part(s) ${unknown.join(", ")} (known: ${PARTS.join(", ")})`);

    const emu = await startEmulator({
        tokens: TOKENS, rateLimit: { requests: 10_000_000, windowSeconds: 300 }, allowedImages: 10_000_000,
        batch: { requestsPerSecond: BATCH_RPS },
        // The emulator fetches each URL from the origin in this one Node process; with 4 stacks on 2 cores a fetch
        // waited over the default 10 s (7 of 25,000 images failed), which is this harness, not Cloudflare.
        fetchTimeoutMs: 60_000,
    });
    const origin = await startImageOrigin();
    const project = await EngineProject.create({ env: { CLOUDFLARE_API_TOKEN: TOKENS[0] } });
    const stackConfig = (lib: Library, extra: Record<string, unknown> = {}) => ({
        "sourcing-kit:apiBaseUrl": emu.baseUrl,
        "sourcing-kit:accountId": emu.accountId,
        "sourcing-kit:accountHash": emu.accountHash,
        "sourcing-kit:scopedToken": false,
        "sourcing-kit:rateLimit": { requests: 10_000_000, windowSeconds: 300 },
        "sourcing-kit:useBatchApi": true,
        "sourcing-kit:mode": "batch",
        "sourcing-kit:sources": [{ kind: "manifest", name: "lib", path: lib.file, idPrefix: lib.prefix }],
        ...extra,
    });
    const previous = (readResults(process.env.BENCH_RESULTS ?? path.join(__dirname, "results.json")).batch ?? {}) as Record<string, unknown>;
    const partRows = { ...(previous.rows ?? {}) } as Record<string, TableRow[]>;
    let rows: TableRow[] = [];
    const json: Record<string, unknown> = {
        ...Object.fromEntries(PARTS.filter((p) => !wanted.includes(p) && previous[p] !== undefined).map((p) => [p, previous[p]])),
        cli: "pulumi v3.248.0, language host v3.68.0 (sdk/v3), file backend",
        emulator: `batch host ${BATCH_RPS} requests/s per batch token, API host limit lifted, in the bench process with the image origin`,
    };
    const stateBytes = async (stack: string) => (await fs.stat(project.stateFile(stack))).size;
    /** Bench process CPU (emulator + origin) over `work`, beside the measured command's tree. */
    async function withBenchCpu<T extends Measured>(work: () => Promise<T>): Promise<T> {
        const before = process.cpuUsage();
        const m = await work();
        const used = process.cpuUsage(before);
        m.cpuSeconds["bench (emulator + origin)"] = round((used.user + used.system) / 1e6, 1);
        return m;
    }
    const up = (stack: string, env: Record<string, string> = {}, args: string[] = []) =>
        withBenchCpu(() => measure(project, ["up", "-s", stack, "--yes", "--skip-preview", ...args], env));
    const row = (caseName: string, result: string, target = "-", met: TableRow["met"] = "n/a") => rows.push({ section: "batch", caseName, result, target, met });

    /**
     * 1-3: 100,000 images in one up, the re-run, 1% changed; `env` for every command of the stack (`memlimit`: the same
     * with GOMEMLIMIT for the Go processes, the CLI and the language host, whose garbage collector otherwise lets the
     * heap grow to twice what is live while each step's checkpoint makes 14 MB of garbage).
     */
    async function fullRun(stack: string, env: Record<string, string>): Promise<Record<string, unknown>> {
        const lib: Library = { prefix: stack, n: ctx.scaled(100_000), file: `${stack}.ndjson` };
        const setting = Object.entries(env).map(([k, v]) => ` (${k}=${v})`).join("");
        await writeManifest(project, origin, lib);
        await project.initStack(stack, stackConfig(lib));
        emu.resetCounters();
        ctx.log(`batch: up of ${count(lib.n)} images (batch mode, default batchSize, checkpoints on)${setting}`);
        const since = Date.now();
        const first = await up(stack, env);
        const phase = uploadPhase(emu, lib.prefix, since);
        const held = imagesUnder(emu, lib.prefix).length;
        const result = {
            images: lib.n, env, up: figures(first), uploads: emu.counters.uploads, emulatorImages: held,
            duplicated: emu.counters.uploads - held, uploadPhase: phase, percentOf200: round(phase.imagesPerSecond / 2, 1),
            maxBatchRequestsInSecond: emu.counters.maxBatchRequestsInSecond, http429: emu.counters.http429,
            stateFileBytes: await stateBytes(stack), byRoute: { ...emu.counters.byRoute },
        } as Record<string, unknown>;
        ctx.log(`batch: full up ${JSON.stringify(result)}`);
        const c = `${count(lib.n)} images${setting}`;
        row(`up ${c}`, `${first.seconds} s wall`, "< 15 min", first.seconds < 900 ? "yes" : "no");
        row(`up ${c}: upload phase`, `${phase.imagesPerSecond} images/s (${result.percentOf200}% of 200/s) over ${phase.seconds} s`, ">= 90% of 200/s", phase.imagesPerSecond >= 180 ? "yes" : "no");
        row(`up ${c}: failed / duplicated`, `0 failed (exit 0), ${emu.counters.uploads} uploads, ${held} images: ${emu.counters.uploads - held} duplicated`, "0 / 0", emu.counters.uploads === lib.n && held === lib.n ? "yes" : "no");
        row(`up ${c}: peak RSS`, `${first.peakRssMb} MB (CLI + language host + program + provider host; each role's own peak, MB: ${Object.entries(first.peakRssMbByRole).map(([role, v]) => `${role} ${v}`).join(", ")})`, "< 2 GB", first.peakRssMb < 2048 ? "yes" : "no");
        row(`up ${c}: state`, `${mb(result.stateFileBytes as number)} MB`, "< 64 MB", (result.stateFileBytes as number) < 64e6 ? "yes" : "no");

        emu.resetCounters();
        ctx.log(`batch: re-run of ${c} with nothing changed`);
        const again = await up(stack, env);
        result.rerun = { up: figures(again), writes: writes(emu), requests: emu.counters.requests, byRoute: { ...emu.counters.byRoute } };
        ctx.log(`batch: re-run ${JSON.stringify(result.rerun)}`);
        row(`re-run ${c}, nothing changed`, `${again.seconds} s, ${writes(emu)} write requests (${emu.counters.requests} requests in all)`, "< 2 min, 0 writes", again.seconds < 120 && writes(emu) === 0 ? "yes" : "no");

        // 3. Every 100th image gets new bytes and a new hash at the source.
        const changed = new Set(Array.from({ length: lib.n }, (_, i) => i).filter((i) => i % 100 === 0));
        const changedIds = [...changed].map((i) => `${lib.prefix}/${i}.png`).sort();
        await writeManifest(project, origin, lib, (i) => (changed.has(i) ? 1 : 0));
        emu.resetCounters();
        ctx.log(`batch: preview --diff with ${count(changed.size)} images changed at the source`);
        const preview = await withBenchCpu(() => measure(project, ["preview", "-s", stack, "--diff"], env));
        await fs.writeFile(`${process.env.BENCH_DIFF_OUT ?? "/tmp/sk-bench-batch-diff.txt"}`, preview.stdout).catch(() => undefined);
        const shown = changedIdsInDiff(preview.stdout, lib.prefix);
        const exact = shown.length === changedIds.length && shown.every((id, i) => id === changedIds[i]);
        const beforeUp = new Map(imagesUnder(emu, lib.prefix).map((id) => [id, emu.images.get(id)!.uploaded]));
        emu.resetCounters();
        ctx.log(`batch: up of the ${count(changed.size)} changed images`);
        const changeUp = await up(stack, env);
        const reuploaded = [...beforeUp].filter(([id, at]) => emu.images.get(id)?.uploaded !== at).map(([id]) => id).sort();
        const sameSet = reuploaded.length === changedIds.length && reuploaded.every((id, i) => id === changedIds[i]);
        result.changed = {
            changed: changed.size, preview: figures(preview), previewShowsChanged: shown.length, previewExact: exact,
            up: figures(changeUp), uploads: emu.counters.uploads, deletes: emu.counters.deletes, patches: emu.counters.patches,
            reuploadedIds: reuploaded.length, reuploadedExactlyTheChanged: sameSet, byRoute: { ...emu.counters.byRoute },
        };
        ctx.log(`batch: 1% changed ${JSON.stringify(result.changed)}`);
        row(`preview --diff, ${count(changed.size)} changed${setting}`, `${preview.seconds} s, names ${shown.length} image IDs as changed (${exact ? "exactly the changed ones" : "NOT exactly the changed ones"})`, `${count(changed.size)}, exactly those`, exact ? "yes" : "no");
        row(`up, ${count(changed.size)} changed${setting}`, `${changeUp.seconds} s, ${emu.counters.uploads} uploads, ${emu.counters.deletes} deletes (the old bytes), ${emu.counters.patches} patches; ${reuploaded.length} images replaced${sameSet ? ", exactly the changed ones" : ""}`, `${count(changed.size)} re-uploads, nothing else`, sameSet && emu.counters.uploads === changed.size && emu.counters.patches === 0 ? "yes" : "no");
        return result;
    }

    /** 1 again, the up alone, with PULUMI_SKIP_CHECKPOINTS=true: what the file backend's checkpoint after every step costs. */
    async function skip(): Promise<Record<string, unknown>> {
        const name = "skip";
        const env = { PULUMI_SKIP_CHECKPOINTS: "true" };
        const setting = "PULUMI_SKIP_CHECKPOINTS=true";
        const lib: Library = { prefix: name, n: ctx.scaled(100_000), file: `${name}.ndjson` };
        await writeManifest(project, origin, lib);
        await project.initStack(name, stackConfig(lib));
        emu.resetCounters();
        ctx.log(`batch: up of ${count(lib.n)} images with ${setting}`);
        const since = Date.now();
        const m = await up(name, env);
        const phase = uploadPhase(emu, lib.prefix, since);
        const held = imagesUnder(emu, lib.prefix).length;
        const result = {
            images: lib.n, env, up: figures(m), uploads: emu.counters.uploads, emulatorImages: held, uploadPhase: phase,
            percentOf200: round(phase.imagesPerSecond / 2, 1), http429: emu.counters.http429, stateFileBytes: await stateBytes(name),
        };
        ctx.log(`batch: ${name} ${JSON.stringify(result)}`);
        const roles = Object.entries(m.peakRssMbByRole).map(([role, v]) => `${role} ${v}`).join(", ");
        row(`up ${count(lib.n)} images, ${setting}`, `${m.seconds} s wall, ${phase.imagesPerSecond} images/s (${result.percentOf200}%), ${m.peakRssMb} MB peak (each role's own peak, MB: ${roles}), CLI CPU ${m.cpuSeconds.cli ?? 0} s, ${held} images, ${emu.counters.uploads - held} duplicated`, "< 2 GB", m.peakRssMb < 2048 && m.code === 0 && held === lib.n ? "yes" : "no");
        return result;
    }
    const full = () => fullRun("full", {});
    /** `full` under each GOMEMLIMIT of BENCH_GOMEMLIMIT (default 512MiB,1GiB); results by value, keeping earlier values'. */
    async function memlimit(): Promise<Record<string, unknown>> {
        const values = (process.env.BENCH_GOMEMLIMIT ?? "512MiB,1GiB").split(",").map((v) => v.trim()).filter(Boolean);
        const bad = values.filter((v) => !/^\d+(B|KiB|MiB|GiB)$/.test(v));
        if (bad.length) throw new Error(`BENCH_GOMEMLIMIT: ${bad.join(", ")} is not a Go memory limit like 512MiB or 1GiB`);
        const result: Record<string, unknown> = { ...(previous.memlimit as Record<string, unknown> | undefined) };
        // The rows of values not run this time stay, like their figures.
        rows.push(...(partRows.memlimit ?? []).filter((r) => !values.some((v) => r.caseName.includes(`(GOMEMLIMIT=${v})`))));
        for (const value of values) result[value] = await fullRun(`memlimit-${value}`, { GOMEMLIMIT: value });
        return result;
    }

    /** 4: the library in 4 partition stacks, each its own token (so its own batch token and 200/s), all at once. */
    async function partitions(): Promise<Record<string, unknown>> {
        const lib: Library = { prefix: "parts", n: ctx.scaled(100_000), file: "parts.ndjson" };
        await writeManifest(project, origin, lib);
        for (let index = 0; index < 4; index++) await project.initStack(`prod-${index}`, stackConfig(lib, { "sourcing-kit:partition": { index, count: 4 } }));
        emu.resetCounters();
        ctx.log(`batch: 4 partition stacks of ${count(lib.n)} images, at once`);
        const since = Date.now();
        const benchBefore = process.cpuUsage();
        const runs = await Promise.all([0, 1, 2, 3].map((index) => measure(project, ["up", "-s", `prod-${index}`, "--yes", "--skip-preview"], { CLOUDFLARE_API_TOKEN: TOKENS[index] }, { allowFailure: true })));
        const failedLines = runs.map((r) => r.code === 0 ? [] : r.stdout.split("\n").filter((l) => /^\s*\* image /.test(l)).map((l) => l.trim()));
        const benchUsed = process.cpuUsage(benchBefore);
        const phase = uploadPhase(emu, lib.prefix, since);
        const held = imagesUnder(emu, lib.prefix);
        const slices = await Promise.all([0, 1, 2, 3].map(async (index) => {
            const state = await project.state(`prod-${index}`);
            return (state.checkpoint.latest?.resources ?? []).flatMap((r) => Object.keys((r.outputs as { images?: Record<string, unknown> } | undefined)?.images ?? {}));
        }));
        const union = new Set(slices.flat());
        const cpu: Record<string, number> = {};
        for (const r of runs) for (const [role, s] of Object.entries(r.cpuSeconds)) cpu[role] = round((cpu[role] ?? 0) + s, 1);
        cpu["bench (emulator + origin)"] = round((benchUsed.user + benchUsed.system) / 1e6, 1);
        const wall = Math.max(...runs.map((r) => r.seconds));
        const result = {
            images: lib.n, stacks: runs.map((r, index) => ({ stack: `prod-${index}`, ...figures(r), images: slices[index]!.length, failedImages: failedLines[index]!.slice(0, 20) })),
            wallSeconds: wall, uploads: emu.counters.uploads, emulatorImages: held.length, unionInStates: union.size,
            inStatesTwice: slices.flat().length - union.size, uploadPhase: phase, percentOf800: round(phase.imagesPerSecond / 8, 1),
            maxBatchRequestsInSecond: emu.counters.maxBatchRequestsInSecond, http429: emu.counters.http429,
            cpuSeconds: cpu, cpuSecondsAvailable: round(wall * 2, 1),
        };
        ctx.log(`batch: partitions ${JSON.stringify(result)}`);
        if (runs.some((r) => r.code !== 0)) throw new Error(`a partition up failed: ${failedLines.flat().slice(0, 5).join("; ")} (${JSON.stringify(result).slice(0, 1500)})`);
        const whole = union.size === lib.n && held.length === lib.n && result.inStatesTwice === 0 && emu.counters.uploads === lib.n;
        row(`4 partitions x ${count(lib.n / 4)} at once`, `${wall} s wall; union ${count(union.size)} of ${count(lib.n)}, ${result.inStatesTwice} in two states, ${emu.counters.uploads} uploads`, "whole library, none twice", whole ? "yes" : "no");
        const top = Object.entries(cpu).sort((a, b) => b[1] - a[1]).map(([role, s]) => `${role} ${s} s`).join(", ");
        row(`4 partitions: aggregate throughput`, `${phase.imagesPerSecond} images/s (${result.percentOf800}% of 4 x 200/s); CPU over ${result.cpuSecondsAvailable} core-s: ${top}`, "vs 4 x 200/s", "n/a");
        return result;
    }

    /** 5: per-image mode against batch mode at 10,000 images, same emulator limits. */
    async function crossover(): Promise<Record<string, unknown>> {
        const n = ctx.scaled(10_000);
        const result: Record<string, unknown> = { images: n };
        for (const mode of ["image", "batch"] as const) {
            const lib: Library = { prefix: `x${mode}`, n, file: `x${mode}.ndjson` };
            const stack = `x${mode}`;
            await writeManifest(project, origin, lib);
            await project.initStack(stack, stackConfig(lib, { "sourcing-kit:mode": mode }));
            // Per-image mode as the README advises past a few thousand images (and as the earlier engine row ran).
            const env: Record<string, string> = mode === "image" ? { PULUMI_SKIP_CHECKPOINTS: "true" } : {};
            emu.resetCounters();
            ctx.log(`batch: ${mode} mode up of ${count(n)} images${mode === "image" ? " (PULUMI_SKIP_CHECKPOINTS=true)" : ""}`);
            const since = Date.now();
            const m = await up(stack, env);
            const phase = uploadPhase(emu, lib.prefix, since);
            const uploads = emu.counters.uploads;
            emu.resetCounters();
            const again = await up(stack, env);
            const r = { up: figures(m), uploads, uploadPhase: phase, stateFileBytes: await stateBytes(stack), rerun: figures(again), rerunWrites: writes(emu), skipCheckpoints: mode === "image" };
            result[mode] = r;
            ctx.log(`batch: crossover ${mode} ${JSON.stringify(r)}`);
            row(`${mode === "image" ? "per-image" : "batch"} mode, ${count(n)} images`, `up ${m.seconds} s (${phase.imagesPerSecond} images/s uploads), ${m.peakRssMb} MB peak, state ${mb(r.stateFileBytes)} MB; re-run ${again.seconds} s`, "-", "n/a");
        }
        return result;
    }

    /** Batch sizes 500 / 1,000 / 2,000 at 20,000 images: time, memory, state, and what the checkpoints cost. */
    async function sizes(): Promise<Record<string, unknown>> {
        const n = ctx.scaled(20_000);
        const out: Record<string, unknown>[] = [];
        const cases: { batchSize: number; skip: boolean }[] = [
            { batchSize: 500, skip: false }, { batchSize: 1000, skip: false }, { batchSize: 2000, skip: false }, { batchSize: 1000, skip: true },
        ];
        for (const { batchSize, skip } of cases) {
            const name = `b${batchSize}${skip ? "s" : ""}`;
            const lib: Library = { prefix: name, n, file: `${name}.ndjson` };
            await writeManifest(project, origin, lib);
            await project.initStack(name, stackConfig(lib, { "sourcing-kit:batchSize": batchSize }));
            emu.resetCounters();
            ctx.log(`batch: batchSize ${batchSize} up of ${count(n)} images${skip ? " (PULUMI_SKIP_CHECKPOINTS=true)" : ""}`);
            const since = Date.now();
            const m = await up(name, skip ? { PULUMI_SKIP_CHECKPOINTS: "true" } : {});
            const phase = uploadPhase(emu, lib.prefix, since);
            emu.resetCounters();
            const again = await up(name);
            const r = { batchSize, skipCheckpoints: skip, images: n, up: figures(m), uploadPhase: phase, stateFileBytes: await stateBytes(name), rerun: figures(again), rerunWrites: writes(emu) };
            out.push(r);
            ctx.log(`batch: size ${JSON.stringify(r)}`);
            row(`batchSize ${batchSize}, ${count(n)} images${skip ? ", skip checkpoints" : ""}`, `up ${m.seconds} s (uploads ${phase.imagesPerSecond}/s), ${m.peakRssMb} MB peak, CLI CPU ${m.cpuSeconds.cli ?? 0} s, state ${mb(r.stateFileBytes)} MB; re-run ${again.seconds} s`, "-", "n/a");
        }
        return { cases: out };
    }

    const work: Record<Part, () => Promise<Record<string, unknown>>> = { full, skip, memlimit, partitions, crossover, sizes };
    try {
        for (const part of PARTS) {
            if (!wanted.includes(part)) continue;
            rows = [];
            try {
                json[part] = await work[part]();
            } catch (err) {
                json[part] = { error: errorMessage(err) };
                row(part, `error: ${errorMessage(err).slice(0, 400)}`, "-", "error");
                ctx.log(`batch: ${part} failed: ${(err as Error).stack ?? String(err)}`);
            }
            partRows[part] = rows;
        }
        json.rows = partRows;
        json.notes = [
            "peak RSS: VmRSS summed over pulumi and every process it started (language host, node program, dynamic provider host), sampled every 250 ms",
            "cpuSeconds: user + system CPU by process, from /proc every 250 ms; the emulator and the image origin run in the bench process",
            "upload phase: first to last upload the emulator recorded for the library; 200/s is the batch host's limit per batch token",
        ];
        return { json, rows: PARTS.flatMap((p) => partRows[p] ?? []) };
    } finally {
        await project.close();
        await origin.close();
        await emu.close();
    }
}
