import * as os from "os";
import * as path from "path";
import { describeMachine, errorMessage, readResults, renderTable, TableRow, writeResults } from "./report";
import { SectionContext, SectionResult, sectionContext } from "./section";

/**
 * `npm run bench`: runs the sections of issue 7 one after another, prints one table and writes
 * bench/results.json. BENCH_SCALE (default 1) scales every size; BENCH_ONLY=throughput,plan runs a subset and
 * merges it into the existing results.json. A section that fails is reported as an error row, never fatal.
 */
const SECTIONS: Record<string, { module: string; key: string }> = {
    throughput: { module: "./throughput", key: "throughput" },
    plan: { module: "./plan", key: "plan" },
    state: { module: "./state", key: "state" },
    redirect: { module: "./redirect", key: "redirect" },
    listing: { module: "./listing", key: "listing" },
    engine: { module: "./engine", key: "engine" },
    preflight: { module: "./preflight", key: "preflight" },
    batch: { module: "./batch", key: "batch" },
};

async function main(): Promise<void> {
    const scale = Number(process.env.BENCH_SCALE ?? "1");
    if (!(scale > 0)) throw new Error(`BENCH_SCALE must be a positive number (got "${process.env.BENCH_SCALE}")`);
    const only = (process.env.BENCH_ONLY ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    const unknown = only.filter((s) => !SECTIONS[s]);
    if (unknown.length) throw new Error(`BENCH_ONLY: unknown section(s) ${unknown.join(", ")} (known: ${Object.keys(SECTIONS).join(", ")})`);
    const names = only.length ? only : Object.keys(SECTIONS);
    const file = process.env.BENCH_RESULTS ?? path.join(__dirname, "results.json");

    const ctx = sectionContext(scale);
    const machine = describeMachine();
    const results: Record<string, unknown> = only.length ? readResults(file) : {};
    results.machine = machine;
    const sectionMeta = (results.sections ?? {}) as Record<string, unknown>;
    const rows: TableRow[] = [];
    for (const name of names) {
        const started = Date.now();
        ctx.log(`${name}: start (scale ${scale})`);
        const outcome = await runSection(name, ctx);
        const seconds = Math.round((Date.now() - started) / 100) / 10;
        ctx.log(`${name}: done in ${seconds} s`);
        results[SECTIONS[name].key] = outcome.json;
        // The machine is shared: the load average says how noisy the section's minute was.
        sectionMeta[name] = { measuredAt: new Date(started).toISOString(), scale, seconds, loadAverageAfter: os.loadavg().map((l) => Math.round(l * 100) / 100) };
        rows.push(...outcome.rows);
        writeResults(file, { ...results, sections: sectionMeta });
    }
    const table = renderTable(rows);
    results.sections = sectionMeta;
    results.table = table.split("\n");
    writeResults(file, results);
    process.stdout.write(`\nsourcing-kit bench: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGb} GB, node ${machine.nodeVersion}, ${machine.date}, scale ${scale}\n\n`);
    process.stdout.write(table + "\n\nresults: " + path.relative(process.cwd(), file) + "\n");
}

async function runSection(name: string, ctx: SectionContext): Promise<SectionResult> {
    try {
        // Loaded lazily so that a section whose dependency is missing or broken fails alone.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const mod = require(SECTIONS[name].module) as { run(ctx: SectionContext): Promise<SectionResult> };
        return await mod.run(ctx);
    } catch (err) {
        const message = errorMessage(err);
        return { json: { error: message }, rows: [{ section: name, caseName: "-", result: `error: ${message}`, target: "-", met: "error" }] };
    }
}

main().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(`bench: ${errorMessage(err)}\n`);
        process.exit(1);
    },
);
