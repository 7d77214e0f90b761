// Standalone emulator: `npm run emulator -- --port 8787 --account ACC --token TOKEN --account-hash HASH [--persist file.json]`.
import { parseArgs } from "node:util";
import { startEmulator, type EmulatorOptions } from "./index";

const USAGE = `usage: npm run emulator -- [--port 8787] [--account ACC] [--token TOKEN ...] [--account-hash HASH]
  [--persist file.json] [--rate-limit REQUESTS/SECONDS] [--batch-rps N] [--error-rate 0..1] [--drop-rate 0..1]
  [--after-write-rate 0..1] [--latency MIN-MAX]`;

function fail(message: string): never {
  process.stderr.write(`emulator: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function rate(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) fail(`--${flag} must be a number from 0 to 1 (got "${value}")`);
  return n;
}

/** Turns the command line into emulator options; exits with the usage on a bad flag. */
export function parseCli(argv: string[]): EmulatorOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: "string", default: "8787" },
        account: { type: "string" },
        token: { type: "string", multiple: true },
        "account-hash": { type: "string" },
        persist: { type: "string" },
        "rate-limit": { type: "string" },
        "batch-rps": { type: "string" },
        "error-rate": { type: "string" },
        "drop-rate": { type: "string" },
        "after-write-rate": { type: "string" },
        latency: { type: "string" },
        help: { type: "boolean" },
      },
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const port = Number(values.port);
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
  // Stop with the process that started us (npm, a shell, a test): one killed with SIGKILL passes nothing on, and an
  // emulator reparented to init would keep its port. Started with no parent of its own (ppid 1), nothing to watch.
  const parent = process.ppid;
  if (parent > 1) setInterval(() => process.ppid !== parent && stop(), 250).unref();
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`emulator: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
