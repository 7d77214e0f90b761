// A progress line for long checks: count, rate and time left.

/** Pure: "images 1,200/10,000 (40/s, 3m40s left)". */
export function progressLine(label: string, done: number, total: number, elapsedMs: number): string {
    const rate = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0;
    const left = rate > 0 ? (total - done) / rate : undefined;
    const eta = left === undefined ? "" : `, ${duration(left)} left`;
    return `${label} ${done.toLocaleString("en-US")}/${total.toLocaleString("en-US")} (${rate >= 10 ? Math.round(rate) : rate.toFixed(1)}/s${eta})`;
}

/** Pure: 42 -> "42s", 220 -> "3m40s", 4000 -> "1h06m". */
export function duration(seconds: number): string {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/**
 * Reports a phase's progress on `write` every `everyMs` once it has run that long (short checks print nothing).
 * `tick()` counts one item; `stop()` ends the reports.
 */
export class Progress {
    private done = 0;
    private readonly started = Date.now();
    private readonly timer: NodeJS.Timeout;

    constructor(private readonly label: string, private readonly total: number, write: (line: string) => void, everyMs = 5000) {
        this.timer = setInterval(() => write(progressLine(this.label, this.done, this.total, Date.now() - this.started)), everyMs);
        this.timer.unref();
    }

    tick(): void {
        this.done++;
    }

    stop(): void {
        clearInterval(this.timer);
    }
}
