// The Pulumi CLI for verify and the local run: on PATH, or the one scripts/pulumi-cli.sh built.
import { spawnSync } from "child_process";
import * as path from "path";

const SCRIPT = path.resolve(__dirname, "..", "scripts", "pulumi-cli.sh");

/** `pulumi` to run: PATH or the build cache (never builds; the message says how). */
export function findPulumi(env: NodeJS.ProcessEnv): { bin: string; dir: string } | { missing: string } {
    const found = spawnSync("bash", [SCRIPT, "--find"], { encoding: "utf8", env });
    const dir = found.stdout.trim().split("\n").pop() ?? "";
    if (found.status === 0 && dir !== "") return { bin: path.join(dir, "pulumi"), dir };
    return { missing: "the Pulumi CLI was not found: install it (https://www.pulumi.com/docs/install/) or run scripts/pulumi-cli.sh, which builds it once with Go (about 9 minutes)" };
}

/** Runs the CLI to completion; the error is its last stderr line (never the token: no command here prints one). */
export function pulumiSync(bin: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): { ok: true; stdout: string } | { ok: false; error: string } {
    const run = spawnSync(bin, [...args, "--non-interactive"], {
        cwd, encoding: "utf8", maxBuffer: 2 * 1024 * 1024 * 1024,
        env: { ...env, PULUMI_SKIP_UPDATE_CHECK: "true", PATH: `${path.dirname(bin)}${path.delimiter}${env.PATH ?? ""}` },
    });
    if (run.status === 0) return { ok: true, stdout: run.stdout };
    const lines = `${run.stderr ?? ""}${run.error?.message ?? ""}`.trim().split("\n").filter((l) => l.trim() !== "");
    return { ok: false, error: lines.slice(-2).join(" ") || `pulumi ${args[0]} exited ${run.status}` };
}
