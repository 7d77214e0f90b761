// Finds the Pulumi CLI that scripts/pulumi-cli.sh provides (as verify and npm start do), and decides what the engine
// suite does without one.
import * as path from "path";
import { findPulumi } from "../../verify/pulumi";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

export type CliLookup = { dir: string } | { missing: string };

let cached: CliLookup | undefined;

/** `scripts/pulumi-cli.sh --find`: PATH, SOURCING_KIT_PULUMI_DIR or the build cache; never builds. */
export function findPulumiCli(): CliLookup {
    if (cached) return cached;
    const found = findPulumi(process.env);
    cached = "dir" in found ? { dir: found.dir } : found;
    return cached;
}

/** Under CI (or SOURCING_KIT_ENGINE_TESTS=required) a missing CLI fails the suite instead of skipping it. */
export function engineTestsRequired(env: NodeJS.ProcessEnv = process.env): boolean {
    return env.SOURCING_KIT_ENGINE_TESTS === "required" || (env.CI !== undefined && env.CI !== "" && env.CI !== "false");
}

let warned = false;

/**
 * `describe` for a suite that needs the real Pulumi CLI. Without one it skips, loudly, on a developer machine,
 * and fails under CI, where scripts/pulumi-cli.sh has run first.
 */
export function describeEngine(title: string, body: (this: Mocha.Suite) => void): Mocha.Suite | void {
    const cli = findPulumiCli();
    if ("dir" in cli) return describe(title, body);
    const why = `the real-engine tests need the Pulumi CLI: ${cli.missing}. Run scripts/pulumi-cli.sh (builds it with Go, once).`;
    if (engineTestsRequired()) {
        return describe(title, () => it("finds the Pulumi CLI", () => { throw new Error(why); }));
    }
    if (!warned) {
        warned = true;
        console.warn(`\n  !!! SKIPPING the real Pulumi engine suite: ${why}\n`);
    }
    return describe.skip(`${title} (skipped: no Pulumi CLI)`, body);
}
