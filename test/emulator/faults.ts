// Fault injection decisions (pure: randomness is passed in).

export interface Faults {
  /** Share of requests answered 500/502/524 before they take effect. */
  errorRate?: number;
  /** Share of requests whose connection is destroyed without an answer, before they take effect. */
  dropRate?: number;
  /** Uniform added latency [min, max] in ms, on every request the faults apply to. */
  latencyMs?: [number, number];
  /** Share of requests delayed by an extra spikeMs. */
  spikeRate?: number;
  spikeMs?: number;
  /** Which requests faults apply to; "writes" = POST/PATCH/PUT/DELETE. Default "all". */
  routes?: "all" | "writes";
  /**
   * Share of SUCCESSFUL writes that take effect (image stored, patched or deleted) and are then answered with a
   * fault anyway, as when Cloudflare stores the image and the connection drops before the answer arrives.
   * Independent of errorRate/dropRate. Default 0.
   */
  afterWriteRate?: number;
  /** The fault used for afterWriteRate: "drop", "error" (500/502/524) or "mixed" (half each). Default "mixed". */
  afterWriteKind?: "drop" | "error" | "mixed";
  /** Reseeds the emulator's fault random numbers when set (reproducible shares in tests). */
  seed?: number;
}

export type FaultAction = { kind: "none" } | { kind: "drop" } | { kind: "error"; status: 500 | 502 | 524 };

export type Random = () => number;

const ERROR_STATUSES = [500, 502, 524] as const;

export function faultApplies(faults: Faults | undefined, method: string): boolean {
  if (!faults) return false;
  return faults.routes !== "writes" || isWrite(method);
}

export function isWrite(method: string): boolean {
  return method === "POST" || method === "PATCH" || method === "PUT" || method === "DELETE";
}

/** The delay to add before handling: uniform latency plus an occasional spike. */
export function delayMs(faults: Faults, random: Random): number {
  let ms = 0;
  if (faults.latencyMs) {
    const [min, max] = faults.latencyMs;
    ms += min + random() * Math.max(0, max - min);
  }
  if (faults.spikeRate && faults.spikeMs && random() < faults.spikeRate) ms += faults.spikeMs;
  return ms;
}

/** The fault injected before the request takes effect. */
export function beforeFault(faults: Faults, random: Random): FaultAction {
  const r = random();
  const drop = faults.dropRate ?? 0;
  const error = faults.errorRate ?? 0;
  if (r < drop) return { kind: "drop" };
  if (r < drop + error) return { kind: "error", status: pickStatus(random) };
  return { kind: "none" };
}

/** The fault injected after a successful write took effect. */
export function afterWriteFault(faults: Faults, random: Random): FaultAction {
  if (!(faults.afterWriteRate && random() < faults.afterWriteRate)) return { kind: "none" };
  const kind = faults.afterWriteKind ?? "mixed";
  if (kind === "drop" || (kind === "mixed" && random() < 0.5)) return { kind: "drop" };
  return { kind: "error", status: pickStatus(random) };
}

function pickStatus(random: Random): 500 | 502 | 524 {
  return ERROR_STATUSES[Math.min(ERROR_STATUSES.length - 1, Math.floor(random() * ERROR_STATUSES.length))];
}

/** A small deterministic PRNG (mulberry32) so fault tests can fix a seed. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function validateFaults(f: Faults): void {
  for (const key of ["errorRate", "dropRate", "spikeRate", "afterWriteRate"] as const) {
    const v = f[key];
    if (v !== undefined && !(v >= 0 && v <= 1)) throw new Error(`faults.${key} must be between 0 and 1 (got ${v})`);
  }
  if ((f.errorRate ?? 0) + (f.dropRate ?? 0) > 1) throw new Error("faults.errorRate + faults.dropRate must be at most 1");
  if (f.latencyMs && !(f.latencyMs[0] >= 0 && f.latencyMs[1] >= f.latencyMs[0])) {
    throw new Error(`faults.latencyMs must be [min, max] with 0 <= min <= max (got ${JSON.stringify(f.latencyMs)})`);
  }
}
