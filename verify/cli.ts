// `npm run verify -- --stack NAME`: checks a stack against what it says it migrated (see README "Verifying a stack").
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { countLine, csv } from "./checks";
import { runVerify } from "./run";
import { readStackExport, type StackState } from "./stack-state";
import { findPulumi, pulumiSync } from "./pulumi";

const USAGE = `usage: npm run verify -- --stack NAME [flags]

Checks every image in the stack's state against Cloudflare Images (it exists under its custom ID with the recorded
source hash) and, with redirects, every row against D1 and the Worker (the old path answers 301 to its delivery URL).
Exits 1 on any mismatch, naming each, and 2 when it cannot check.

  --stack NAME        the stack (required)
  --cwd DIR           the Pulumi project folder (default: the current folder)
  --bytes             also compare each stored original with the source's bytes (one API request per image)
  --report FILE       write a CSV: old_url, custom_id, delivery_url, status, detail
  --worker-url URL    where old paths are requested (default https://<redirectHostname output>)
  --concurrency N     HTTP checks in flight (default 16)
  --help              this text

The token is CLOUDFLARE_API_TOKEN, else the stack's cloudflare:apiToken (Images read; D1 read with redirects).`;

export interface CliOutcome { code: 0 | 1 | 2; out: string[] }

/** Runs verify for `argv`, printing progress to `progress`; returns the exit code and what to print. */
export async function main(argv: string[], env: NodeJS.ProcessEnv, progress: (line: string) => void): Promise<CliOutcome> {
    let values: ReturnType<typeof parse>;
    try {
        values = parse(argv);
    } catch (error) {
        return { code: 2, out: [`verify: ${(error as Error).message}`, "", USAGE] };
    }
    if (values.help) return { code: 0, out: [USAGE] };
    const stack = values.stack;
    if (!stack) return { code: 2, out: ["verify: --stack NAME is required", "", USAGE] };
    const concurrency = values.concurrency === undefined ? 16 : Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
        return { code: 2, out: [`verify: --concurrency must be a whole number from 1 to 256 (got ${values.concurrency})`] };
    }
    const projectDir = path.resolve(values.cwd ?? ".");

    const pulumi = findPulumi(env);
    if ("missing" in pulumi) return { code: 2, out: [`verify: ${pulumi.missing}`] };
    const exported = pulumiSync(pulumi.bin, ["stack", "export", "--stack", stack], projectDir, env);
    if (!exported.ok) return { code: 2, out: [`verify: cannot read stack "${stack}": ${exported.error}`] };
    let state: StackState;
    try {
        state = readStackExport(JSON.parse(exported.stdout));
    } catch (error) {
        return { code: 2, out: [`verify: stack "${stack}": ${(error as Error).message}`] };
    }
    let apiToken = env.CLOUDFLARE_API_TOKEN;
    if (!apiToken) {
        const fromConfig = pulumiSync(pulumi.bin, ["config", "get", "cloudflare:apiToken", "--stack", stack], projectDir, env);
        if (!fromConfig.ok || fromConfig.stdout.trim() === "") {
            return { code: 2, out: ["verify: no API token: set CLOUDFLARE_API_TOKEN, or cloudflare:apiToken in the stack (pulumi config set --secret cloudflare:apiToken <token>)"] };
        }
        apiToken = fromConfig.stdout.trim();
    }
    const hostname = state.outputs.redirectHostname;
    const workerUrl = values["worker-url"] ?? (typeof hostname === "string" && hostname !== "" ? `https://${hostname}` : undefined);

    const rowCount = state.shards.reduce((n, s) => n + Object.keys(s.rows).length, 0);
    const out = [`verify: stack ${stack}: ${state.images.length.toLocaleString("en-US")} images, ${rowCount.toLocaleString("en-US")} redirect rows`];
    const result = await runVerify({ state, apiToken, workerUrl, bytes: values.bytes === true, projectDir, concurrency, progress });
    out.push(`  images:    ${countLine(result.images)}${values.bytes ? " (with --bytes: stored originals compared with the sources)" : ""}`);
    if (rowCount > 0) out.push(`  redirects: ${countLine(result.rows)}${workerUrl ? ` (answers of ${workerUrl})` : " (D1 only)"}`);
    for (const note of result.notes) out.push(`  note: ${note}`);
    if (values.report) {
        fs.writeFileSync(values.report, csv(result.lines));
        out.push(`  report:    ${values.report} (${result.lines.length.toLocaleString("en-US")} lines)`);
    }
    if (result.problems.length === 0) {
        out.push("verify: OK, everything matches");
        return { code: 0, out };
    }
    const shown = result.problems.slice(0, 50);
    out.push(`verify: FAILED, ${result.problems.length.toLocaleString("en-US")} problem${result.problems.length === 1 ? "" : "s"}:`, ...shown.map((p) => `  - ${p}`));
    if (result.problems.length > shown.length) out.push(`  ... and ${result.problems.length - shown.length} more${values.report ? ` (all in ${values.report})` : " (--report FILE lists them all)"}`);
    return { code: 1, out };
}

function parse(argv: string[]) {
    return parseArgs({
        args: argv,
        options: {
            stack: { type: "string", short: "s" },
            cwd: { type: "string", short: "C" },
            bytes: { type: "boolean" },
            report: { type: "string" },
            "worker-url": { type: "string" },
            concurrency: { type: "string" },
            help: { type: "boolean", short: "h" },
        },
        strict: true,
        allowPositionals: false,
    }).values;
}

if (require.main === module) {
    const progress = (line: string) => process.stderr.write(`${line}\n`);
    main(process.argv.slice(2), process.env, progress)
        .then(({ code, out }) => {
            process.stdout.write(`${out.join("\n")}\n`);
            process.exitCode = code;
        })
        .catch((error: Error) => {
            // Errors of the API client are redacted; nothing else here holds a secret.
            process.stderr.write(`verify: ${error.message}\n`);
            process.exitCode = 2;
        });
}
