import type { TableRow } from "./report";

/** What every section gets: the size scale (BENCH_SCALE) and a helper to scale the default sizes. */
export interface SectionContext {
    scale: number;
    scaled(defaultSize: number): number;
    log(message: string): void;
}

/** A section's figures for results.json and its lines for the printed table. */
export interface SectionResult {
    json: unknown;
    rows: TableRow[];
}

export function sectionContext(scale: number): SectionContext {
    return {
        scale,
        scaled: (n) => Math.max(1, Math.round(n * scale)),
        log: (message) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`),
    };
}
