// Standalone emulator: `npm run emulator -- --port 8787 --account ACC --token TOKEN --account-hash HASH [--persist file.json]`.
// First, so the parent is read before anything else loads (see parent-watch.ts).
import { onParentExit } from "./parent-watch";
import { parseArgs } from "node:util";
import { startEmulator, type EmulatorOptions } from "./index";

/**
 * Every flag the CLI takes: parseArgs' options and --help are both made from this table, so they cannot drift.
 * `value` names the flag's argument in --help (none for a boolean), `default` is what applies without the flag.
 */
export const FLAGS = {
  port: { type: "string", value: "PORT", default: "8787", help: "port on 127.0.0.1 to listen on; 0 picks a free one" },
  account: { type: "string", value: "ACC", default: "acc-test", help: "the account ID the API answers for (/accounts/ACC/...)" },
  token: { type: "string", multiple: true, value: "TOKEN", default: "test-token", help: "an accepted bearer token; repeat the flag for several" },
  "account-hash": { type: "string", value: "HASH", default: "hash-test", help: "the account hash in delivery URLs (https://imagedelivery.net/HASH/...)" },
  persist: { type: "string", value: "FILE.json", default: "none, images live in memory only", help: "load images from FILE.json at start and save them there after writes and on exit" },
  "rate-limit": { type: "string", value: "REQUESTS/SECONDS", default: "1200/300", help: "rate limit per token, over it HTTP 429 / 971 with Retry-After" },
  "rate-limit-mode": { type: "string", value: "strict|lenient", default: "strict", help: "strict: going over blocks the token for SECONDS, every request 429, then the count starts afresh (Cloudflare); lenient: a sliding window, no block" },
  "batch-rps": { type: "string", value: "N", default: "200", help: "requests per second per batch token on the batch host (/batch)" },
  "error-rate": { type: "string", value: "0..1", default: "0", help: "share of requests answered 500, 502 or 524 before they take effect" },
  "drop-rate": { type: "string", value: "0..1", default: "0", help: "share of requests whose connection is dropped before they take effect" },
  "after-write-rate": { type: "string", value: "0..1", default: "0", help: "share of successful writes that take effect and then fail (drop or error)" },
  latency: { type: "string", value: "MIN-MAX", default: "none", help: "delay each request by MIN to MAX ms, e.g. 10-50" },
  help: { type: "boolean", default: "off", help: "print this help and exit" },
} as const satisfies Record<string, { type: "string" | "boolean"; multiple?: boolean; value?: string; default: string; help: string }>;

/** --help: the usage line, then one line per flag with what it does and its default. */
export function helpText(): string {
  const rows = Object.entries(FLAGS).map(([name, flag]) => [`--${name}${"value" in flag ? ` ${flag.value}` : ""}`, flag] as const);
  const width = Math.max(...rows.map(([left]) => left.length));
  return [
    "usage: npm run emulator -- [flags]",
    "A local Cloudflare Images API; the first line it prints is 'listening on http://127.0.0.1:PORT'. SIGINT/SIGTERM stop it.",
    "",
    ...rows.map(([left, flag]) => `  ${left.padEnd(width)}  ${flag.help} (default: ${flag.default})`),
  ].join("\n");
}

type Flags = typeof FLAGS;
/** parseArgs' options: FLAGS without the help texts (typed per flag, so `values` is too). */
const PARSE_OPTIONS = Object.fromEntries(
  Object.entries(FLAGS).map(([name, f]) => [name, { type: f.type, ...("multiple" in f ? { multiple: f.multiple } : {}) }]),
) as unknown as { [K in keyof Flags]: Flags[K] extends { multiple: true } ? { type: Flags[K]["type"]; multiple: true } : { type: Flags[K]["type"] } };

function fail(message: string): never {
  process.stderr.write(`emulator: ${message}\n${helpText()}\n`);
  process.exit(2);
}

function rate(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) fail(`--${flag} must be a number from 0 to 1 (got "${value}")`);
  return n;
}

/** Turns the command line into emulator options; exits with the help on a bad flag, or after printing it for --help. */
export function parseCli(argv: string[]): EmulatorOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: PARSE_OPTIONS,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${helpText()}\n`);
    process.exit(0);
  }
  const port = Number(values.port ?? FLAGS.port.default);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535 (got "${values.port}")`);
  const opts: EmulatorOptions = { port };
  if (values.account) opts.accountId = values.account;
  if (values.token?.length) opts.tokens = values.token;
  if (values["account-hash"]) opts.accountHash = values["account-hash"];
  if (values.persist) opts.persistPath = values.persist;
  if (values["rate-limit"]) {
    const m = /^(\d+)\/(\d+(?:\.\d+)?)$/.exec(values["rate-limit"]);
    if (!m) fail(`--rate-limit must be REQUESTS/SECONDS, e.g. 1200/300 (got "${values["rate-limit"]}")`);
    opts.rateLimit = { requests: Number(m[1]), windowSeconds: Number(m[2]) };
  }
  const mode = values["rate-limit-mode"];
  if (mode !== undefined) {
    if (mode !== "strict" && mode !== "lenient") fail(`--rate-limit-mode must be strict or lenient (got "${mode}")`);
    const [requests, windowSeconds] = FLAGS["rate-limit"].default.split("/").map(Number);
    opts.rateLimit = { ...(opts.rateLimit ?? { requests, windowSeconds }), mode };
  }
  if (values["batch-rps"]) {
    const n = Number(values["batch-rps"]);
    if (!Number.isInteger(n) || n < 1) fail(`--batch-rps must be a positive integer (got "${values["batch-rps"]}")`);
    opts.batch = { requestsPerSecond: n };
  }
  const errorRate = rate("error-rate", values["error-rate"]);
  const dropRate = rate("drop-rate", values["drop-rate"]);
  const afterWriteRate = rate("after-write-rate", values["after-write-rate"]);
  let latencyMs: [number, number] | undefined;
  if (values.latency) {
    const m = /^(\d+)-(\d+)$/.exec(values.latency);
    if (!m) fail(`--latency must be MIN-MAX in ms, e.g. 10-50 (got "${values.latency}")`);
    latencyMs = [Number(m[1]), Number(m[2])];
  }
  if (errorRate !== undefined || dropRate !== undefined || afterWriteRate !== undefined || latencyMs) {
    opts.faults = { errorRate, dropRate, afterWriteRate, latencyMs };
  }
  return opts;
}

async function main(): Promise<void> {
  const emu = await startEmulator(parseCli(process.argv.slice(2)));
  process.stdout.write(`listening on http://127.0.0.1:${emu.port}\n`);
  process.stdout.write(`apiBaseUrl: ${emu.baseUrl} (account ${emu.accountId}, batch host ${emu.batchBaseUrl})\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    emu.close().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`emulator: error while stopping: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // Stop with the process that started us (npm, a shell, a test), even one killed with SIGKILL.
  onParentExit(stop);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`emulator: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
