// `npm start`: the whole migration on this machine. A local Cloudflare (Images API, delivery, D1, the redirect
// Worker, the old site) on 127.0.0.1, then `pulumi up` of the `local` stack with the real CLI, then `verify`, then a
// summary and old URLs to try; it keeps serving until Ctrl-C. `npm run local -- <pulumi command>` runs any other
// command (preview, destroy, refresh, stack output, verify) against the same local Cloudflare.
// First, so the parent is read before anything else loads (see parent-watch.ts).
import { onParentExit } from "../test/emulator/parent-watch";
import { spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { findPulumi, pulumiSync } from "../verify/pulumi";
import { main as verifyMain } from "../verify/cli";
import { LOCAL_DATABASE_ID, PortInUseError, startLocalCloudflare, type LocalCloudflare } from "./cloudflare";

const REPO = path.resolve(__dirname, "..");

/** What Pulumi.local.yaml points at (test/program/stack-files.test.ts keeps the two equal). */
export const LOCAL = {
    stack: "local",
    ports: { api: 8787, worker: 8788, origin: 8789 },
    accountId: "local-account",
    accountHash: "local-hash",
    token: "local-token",
    databaseId: LOCAL_DATABASE_ID,
    /** The old site: the folder the example images come from. */
    originDir: path.join(REPO, "examples", "images"),
    /** Encrypts the local stack's secrets; it protects nothing, the local stack holds none. */
    passphrase: "local-only-not-a-secret",
} as const;

/** Everything the local run keeps, git-ignored: the Pulumi state, Pulumi's home, the emulator's images and D1. */
export function localDirs(root = path.join(REPO, ".local")) {
    return { root, backend: path.join(root, "pulumi"), home: path.join(root, "pulumi-home"), cloudflare: path.join(root, "cloudflare") };
}

/** The environment of every `pulumi` command of the local run: the local backend, home and token, offline. */
export function localEnv(cliDir: string, dirs = localDirs(), base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...base };
    // Real credentials and Pulumi settings of the user's shell never reach the local stack (a PULUMI_BACKEND_URL
    // would put its state elsewhere); only the choice to skip type-checking is kept.
    for (const key of Object.keys(env)) {
        if (/^(CLOUDFLARE_|AWS_|CLOUDINARY_|PULUMI_)/.test(key) && key !== "PULUMI_NODEJS_TRANSPILE_ONLY") delete env[key];
    }
    return {
        ...env,
        PATH: `${cliDir}${path.delimiter}${base.PATH ?? ""}`,
        PULUMI_BACKEND_URL: `file://${dirs.backend}`,
        PULUMI_HOME: dirs.home,
        PULUMI_CONFIG_PASSPHRASE: LOCAL.passphrase,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        // The program is type-checked as in any user's `pulumi up`, unless PULUMI_NODEJS_TRANSPILE_ONLY says otherwise.
        CLOUDFLARE_API_TOKEN: LOCAL.token,
    };
}

type Say = (line: string) => void;

/** `pulumi` commands that read or change only the state or the config: no local Cloudflare is started for them. */
const STATE_ONLY_COMMANDS = new Set(["cancel", "stack", "config", "about", "console", "history"]);

/** Runs `pulumi <args>` with the terminal (the user sees the CLI's own output); resolves with its exit code. */
function runPulumi(bin: string, args: string[], env: NodeJS.ProcessEnv, track: Set<ChildProcess>): Promise<number> {
    return new Promise((resolve, reject) => {
        const child = spawn(bin, args, { cwd: REPO, env, stdio: ["inherit", "inherit", "inherit"] });
        track.add(child);
        child.once("error", reject);
        child.once("exit", (code, signal) => {
            track.delete(child);
            resolve(code ?? (signal ? 128 : 1));
        });
    });
}

/** Creates the `local` stack on first use (the salt in Pulumi.local.yaml is committed, so the file stays as it is). */
function ensureStack(bin: string, env: NodeJS.ProcessEnv): string | undefined {
    fs.mkdirSync(localDirs().backend, { recursive: true });
    const selected = pulumiSync(bin, ["stack", "select", LOCAL.stack, "--create", "--secrets-provider", "passphrase"], REPO, env);
    return selected.ok ? undefined : selected.error;
}

/** The CLI's message for a stack another run holds, turned into what to do. */
function lockAdvice(): string {
    return "a previous local run was interrupted and left the stack locked: run `npm run local -- cancel --yes`, then " +
        "`npm run local -- refresh --clear-pending-creates --yes`, then `npm start` again";
}

/** The counts the stack reports, skipped files with their reasons, and old URLs to open. */
export function summary(outputs: Record<string, unknown>, local: Pick<LocalCloudflare, "workerUrl" | "originUrl">): string[] {
    const lines: string[] = [];
    const sources = (outputs.sources ?? {}) as Record<string, { planned: number; skipped: Record<string, number>; duplicates: number }>;
    for (const [name, s] of Object.entries(sources)) {
        const skipped = Object.entries(s.skipped ?? {}).map(([reason, n]) => `${n} ${reason}`).join(", ");
        lines.push(`  ${name}: ${s.planned} migrated, ${s.duplicates} duplicate${s.duplicates === 1 ? "" : "s"} (same bytes as another file, one image)` +
            `${skipped ? `, skipped: ${skipped}` : ""}`);
    }
    const mapping = (outputs.mapping ?? {}) as Record<string, { imageId: string; deliveryUrl: string }>;
    lines.push(`  ${Object.keys(mapping).length} old URLs answer 301 from the redirect Worker at ${local.workerUrl}`);
    const examples = Object.keys(mapping).sort().slice(0, 3);
    if (examples.length > 0) {
        lines.push("", "Old URLs to open or curl (each answers 301 to its image):");
        for (const oldPath of examples) lines.push(`  curl -sI ${local.workerUrl}${oldPath}`);
        lines.push("", `Unmapped paths come from the old site (${local.originUrl}), e.g.:`, `  curl -s ${local.workerUrl}/README.txt`);
    }
    return lines;
}

/** `npm start` (no arguments) or `npm run local -- <command...>`; resolves with the exit code. */
export async function main(argv: string[], say: Say = (l) => process.stdout.write(`${l}\n`), signals: NodeJS.EventEmitter = process): Promise<number> {
    const cli = findPulumi(process.env);
    if ("missing" in cli) {
        say(`npm start: ${cli.missing}`);
        return 2;
    }
    const dirs = localDirs();
    const env = localEnv(cli.dir, dirs);
    const children = new Set<ChildProcess>();
    if (argv.length > 0 && STATE_ONLY_COMMANDS.has(argv[0]!)) {
        // Commands on the state or config alone need no local Cloudflare.
        const stackError = ensureStack(cli.bin, env);
        if (stackError) {
            say(`npm run local: cannot create or select the local stack: ${stackError}`);
            return 2;
        }
        return runPulumi(cli.bin, [...argv, "--stack", LOCAL.stack], env, children);
    }
    // A command while `npm start` serves (another terminal) uses that local Cloudflare instead of starting one.
    const running = await runningLocal();
    if (running && argv.length === 0) {
        say(`npm start: the local Cloudflare is already running (${running.apiBaseUrl}): another npm start serves it. ` +
            "Use `npm run local -- up` (or preview, destroy, verify) in this terminal, or stop the other one with Ctrl-C");
        return 2;
    }
    let local: Pick<LocalCloudflare, "apiBaseUrl" | "deliveryBaseUrl" | "workerUrl" | "originUrl" | "stop">;
    try {
        local = running ?? await startLocalCloudflare({
            ports: LOCAL.ports, accountId: LOCAL.accountId, accountHash: LOCAL.accountHash, tokens: [LOCAL.token],
            stateDir: dirs.cloudflare, databaseId: LOCAL.databaseId, originDir: LOCAL.originDir,
        });
    } catch (error) {
        say(`npm start: ${error instanceof PortInUseError ? error.message : `the local Cloudflare did not start: ${(error as Error).message}`}`);
        return 2;
    }

    // Ctrl-C or a plain `kill`: stop the CLI (it cancels cleanly on SIGINT) and every local service, then exit.
    let stopping: Promise<void> | undefined;
    const stop = () => (stopping ??= (async () => {
        for (const child of children) child.kill("SIGINT");
        await Promise.all([...children].map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.once("exit", resolve)))));
        await local.stop();
    })());
    let stopped!: () => void;
    const untilStopped = new Promise<void>((resolve) => (stopped = resolve));
    const onSignal = () => void stop().then(stopped);
    signals.on("SIGINT", onSignal);
    signals.on("SIGTERM", onSignal);
    // Started by npm, whose own SIGTERM does not reach this process: stop with the parent rather than outlive it.
    const unwatch = onParentExit(onSignal);
    const finish = async (code: number) => {
        await stop();
        signals.off("SIGINT", onSignal);
        signals.off("SIGTERM", onSignal);
        unwatch();
        return code;
    };

    try {
        const stackError = ensureStack(cli.bin, env);
        if (stackError) {
            say(`npm start: cannot create or select the local stack: ${stackError}`);
            return await finish(2);
        }
        const verifyArgs = ["--stack", LOCAL.stack, "--cwd", REPO, "--worker-url", local.workerUrl];
        const verify = async (extra: string[]) => {
            const result = await verifyMain([...verifyArgs, ...extra], env, (line) => say(line));
            for (const line of result.out) say(line);
            return result.code;
        };

        if (argv.length > 0) {
            // `npm run local -- <command>`: one command against the local Cloudflare, then stop.
            if (argv[0] === "verify") return await finish(await verify(argv.slice(1)));
            const code = await runPulumi(cli.bin, [...argv, "--stack", LOCAL.stack], env, children);
            return await finish(code);
        }

        say(`local Cloudflare: Images API ${local.apiBaseUrl}, delivery ${local.deliveryBaseUrl}, redirect Worker ${local.workerUrl}, old site ${local.originUrl}`);
        say(`state in ${path.relative(process.cwd(), dirs.root) || "."}/ (git-ignored); roll back with: npm run local -- destroy`);
        const upCode = await runPulumi(cli.bin, ["up", "--yes", "--skip-preview", "--stack", LOCAL.stack], env, children);
        if (stopping) return await finish(130);
        if (upCode !== 0) {
            say(`npm start: pulumi up failed (exit ${upCode}): ${hasLock(dirs.backend) ? lockAdvice() : "the output above names what failed"}`);
            return await finish(upCode);
        }
        say("");
        const verifyCode = await verify([]);
        const outputs = pulumiSync(cli.bin, ["stack", "output", "--json", "--stack", LOCAL.stack], REPO, env);
        say("");
        say("Migrated into the local Cloudflare:");
        for (const line of summary(outputs.ok ? JSON.parse(outputs.stdout) as Record<string, unknown> : {}, local)) say(line);
        say("");
        say("Serving until Ctrl-C. Run `npm start` again for a no-op update, `npm run local -- destroy` to roll back.");
        if (verifyCode !== 0) return await finish(verifyCode);
        await untilStopped;
        return await finish(0);
    } catch (error) {
        say(`npm start: ${(error as Error).message}`);
        return await finish(1);
    }
}

/** The local Cloudflare another `npm start` serves, if its Images API answers the local token on the local port. */
async function runningLocal(): Promise<Pick<LocalCloudflare, "apiBaseUrl" | "deliveryBaseUrl" | "workerUrl" | "originUrl" | "stop"> | undefined> {
    const origin = (port: number) => `http://127.0.0.1:${port}`;
    const apiBaseUrl = `${origin(LOCAL.ports.api)}/client/v4`;
    try {
        const res = await fetch(`${apiBaseUrl}/user/tokens/verify`, { headers: { authorization: `Bearer ${LOCAL.token}` }, signal: AbortSignal.timeout(2000) });
        if (!res.ok || (await res.json() as { success?: boolean }).success !== true) return undefined;
    } catch {
        return undefined;
    }
    return {
        apiBaseUrl, deliveryBaseUrl: `${origin(LOCAL.ports.api)}/cdn-cgi/imagedelivery`,
        workerUrl: origin(LOCAL.ports.worker), originUrl: origin(LOCAL.ports.origin), stop: async () => undefined,
    };
}

/** True when the file backend holds a lock of the local stack (a run that did not finish). */
function hasLock(backend: string): boolean {
    const locks = path.join(backend, ".pulumi", "locks");
    const walk = (dir: string): boolean => fs.readdirSync(dir, { withFileTypes: true })
        .some((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith(".json")));
    return fs.existsSync(locks) && walk(locks);
}

if (require.main === module) {
    main(process.argv.slice(2)).then((code) => process.exit(code), (error: Error) => {
        process.stderr.write(`npm start: ${error.message}\n`);
        process.exit(1);
    });
}
