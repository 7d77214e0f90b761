import * as fs from "fs";
import * as os from "os";

/** What the figures were measured on; stored with them so numbers from different machines are not compared blind. */
export interface MachineDescription {
    cpuModel: string;
    cores: number;
    memoryGb: number;
    nodeVersion: string;
    platform: string;
    loadAverageAtStart: number[];
    date: string;
}

export function describeMachine(now: Date = new Date()): MachineDescription {
    const cpus = os.cpus();
    return {
        cpuModel: cpus[0]?.model.trim() ?? "unknown",
        cores: cpus.length,
        memoryGb: round(os.totalmem() / 2 ** 30, 1),
        nodeVersion: process.version,
        platform: `${os.platform()} ${os.release()} ${os.arch()}`,
        loadAverageAtStart: os.loadavg().map((l) => round(l, 2)),
        date: now.toISOString(),
    };
}

/** One line of the printed table: a measured case, its figures, the target it answers to and whether it is met. */
export interface TableRow {
    section: string;
    caseName: string;
    result: string;
    target: string;
    met: "yes" | "no" | "n/a" | "error";
}

export function renderTable(rows: TableRow[]): string {
    const headers = ["section", "case", "result", "target", "met"];
    const cells = rows.map((r) => [r.section, r.caseName, r.result, r.target, r.met]);
    const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
    const line = (c: string[]) => "| " + c.map((v, i) => v.padEnd(widths[i])).join(" | ") + " |";
    const rule = "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|";
    return [line(headers), rule, ...cells.map(line)].join("\n");
}

/** Reads the previous results file (to merge a partial run into it); a missing or unreadable file is an empty one. */
export function readResults(file: string): Record<string, unknown> {
    try {
        const parsed: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
        return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    } catch {
        return {};
    }
}

export function writeResults(file: string, results: Record<string, unknown>): void {
    fs.writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
}

export function round(value: number, digits = 2): number {
    const f = 10 ** digits;
    return Math.round(value * f) / f;
}

export function errorMessage(err: unknown): string {
    if (err instanceof Error) return err.message.split("\n")[0].slice(0, 300);
    return String(err).slice(0, 300);
}

/** Percentile by nearest rank over an unsorted sample (p in 0..100). */
export function percentile(values: number[], p: number): number {
    if (values.length === 0) return NaN;
    const sorted = [...values].sort((a, b) => a - b);
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[rank];
}
