// A copy of this project in a temp folder, driven with the real Pulumi CLI on a file backend in that folder.
// The copy holds the program and provider code (node_modules is a symlink), so a test may edit the stack file, the
// sources or even the provider code without touching the checkout, and nothing reaches the user's ~/.pulumi.
import { ChildProcess, spawn } from "child_process";
import { promises as fs } from "fs";
import * as fsSync from "fs";
import * as os from "os";
import * as path from "path";
import { findPulumiCli, REPO_ROOT } from "./cli";

/** What `pulumi` needs of the project: the program, the provider code, the project file and its packages. */
const PROJECT_FILES = ["index.ts", "config.ts", "components", "provider", "Pulumi.yaml", "tsconfig.json", "package.json"];

export const PASSPHRASE = "engine-tests-only";

export interface CliResult {
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
}

/** One engine event of `pulumi up|destroy|refresh --json` (newline-delimited). */
export interface EngineEvent {
    sequence: number;
    diagnosticEvent?: { message: string; severity: string; urn?: string; prefix?: string };
    resourcePreEvent?: { metadata: StepMetadata };
    resOutputsEvent?: { metadata: StepMetadata };
    resOpFailedEvent?: { metadata: StepMetadata; status: number };
    summaryEvent?: { resourceChanges?: Record<string, number>; maybeCorrupt?: boolean };
}

export interface StepMetadata {
    op: string;
    urn: string;
    type: string;
    detailedDiff?: Record<string, { kind: string; inputDiff?: boolean }> | null;
    diffs?: string[];
}

/** `pulumi preview --json`. */
export interface PreviewJson {
    steps: { op: string; urn: string; detailedDiff?: StepMetadata["detailedDiff"]; diffReasons?: string[] }[];
    diagnostics?: { message: string; severity: string; urn?: string }[];
    changeSummary?: Record<string, number>;
}

export interface StateResource {
    urn: string;
    type: string;
    id?: string;
    custom: boolean;
    inputs?: Record<string, unknown>;
    outputs?: Record<string, unknown>;
    retainOnDelete?: boolean;
}

export interface StackState {
    checkpoint: { latest?: { resources?: StateResource[]; pending_operations?: unknown[] } };
}

export const IMAGE_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";

export interface RunOptions {
    env?: Record<string, string | undefined>;
    /** Resolve on any exit code instead of rejecting on a non-zero one. */
    allowFailure?: boolean;
    stdin?: string;
}

export class EngineProject {
    private readonly children = new Set<ChildProcess>();

    private constructor(
        /** The project copy: `pulumi` runs here. */
        readonly root: string,
        readonly cliDir: string,
        /** Extra environment of every command (e.g. CLOUDFLARE_API_TOKEN). */
        public env: Record<string, string | undefined>,
    ) {}

    /** Copies the project (plus `extraFiles` from the checkout) into a new temp folder. */
    static async create(options: { extraFiles?: string[]; env?: Record<string, string | undefined> } = {}): Promise<EngineProject> {
        const cli = findPulumiCli();
        if (!("dir" in cli)) throw new Error(cli.missing);
        const root = await fs.mkdtemp(path.join(os.tmpdir(), "sk-engine-"));
        for (const name of [...PROJECT_FILES, ...(options.extraFiles ?? [])]) {
            await fs.cp(path.join(REPO_ROOT, name), path.join(root, name), { recursive: true });
        }
        await fs.symlink(path.join(REPO_ROOT, "node_modules"), path.join(root, "node_modules"), "dir");
        await fs.mkdir(path.join(root, ".pulumi-home"));
        return new EngineProject(root, cli.dir, options.env ?? {});
    }

    /** The environment of a `pulumi` command: the CLI first on PATH, state and plugins inside the copy, offline. */
    commandEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
        const env: NodeJS.ProcessEnv = { ...process.env };
        // Nothing of the developer's shell leaks in: tokens and cloud credentials come only from each test.
        for (const key of Object.keys(env)) {
            if (/^(CLOUDFLARE_|AWS_|CLOUDINARY_|PULUMI_)/.test(key)) delete env[key];
        }
        Object.assign(env, {
            PATH: `${this.cliDir}${path.delimiter}${process.env.PATH ?? ""}`,
            PULUMI_HOME: path.join(this.root, ".pulumi-home"),
            PULUMI_BACKEND_URL: `file://${this.root}`,
            PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            // The program is type-checked by `npm test` (tsc); the engine runs it transpile-only to save ~4 s a run.
            PULUMI_NODEJS_TRANSPILE_ONLY: "true",
            NO_COLOR: "1",
        });
        for (const [k, v] of Object.entries({ ...this.env, ...extra })) {
            if (v === undefined) delete env[k];
            else env[k] = v;
        }
        return env;
    }

    /** Starts `pulumi <args>` in its own process group (so a test can kill it and every child it started). */
    start(args: string[], options: RunOptions = {}): { child: ChildProcess; done: Promise<CliResult> } {
        const child = spawn(path.join(this.cliDir, "pulumi"), args, {
            cwd: this.root,
            env: this.commandEnv(options.env),
            detached: true,
            stdio: ["pipe", "pipe", "pipe"],
        });
        this.children.add(child);
        let stdout = "";
        let stderr = "";
        child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
        child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        child.stdin!.end(options.stdin ?? "");
        const done = new Promise<CliResult>((resolve, reject) => {
            child.on("error", reject);
            child.on("close", (code, signal) => {
                this.children.delete(child);
                resolve({ code, signal, stdout, stderr });
            });
        });
        return { child, done };
    }

    /** Runs `pulumi <args>`; rejects with the whole output on a non-zero exit unless `allowFailure`. */
    async pulumi(args: string[], options: RunOptions = {}): Promise<CliResult> {
        const result = await this.start(args, options).done;
        if (result.code !== 0 && !options.allowFailure) {
            throw new Error(`pulumi ${args.join(" ")} exited ${result.code ?? result.signal}\n--- stdout\n${readable(result.stdout)}\n--- stderr\n${result.stderr}`);
        }
        return result;
    }

    /** Writes Pulumi.<stack>.yaml (JSON is YAML) and creates the stack with the passphrase secrets provider. */
    async initStack(stack: string, config: Record<string, unknown>): Promise<void> {
        await this.writeStackConfig(stack, config);
        await this.pulumi(["stack", "init", stack, "--secrets-provider", "passphrase"]);
    }

    /** Replaces the stack file's config, keeping its encryption salt (so `secure:` values still decrypt). */
    async writeStackConfig(stack: string, config: Record<string, unknown>): Promise<void> {
        const file = path.join(this.root, `Pulumi.${stack}.yaml`);
        const salt = fsSync.existsSync(file) ? /^encryptionsalt:\s*(\S+)/m.exec(await fs.readFile(file, "utf8"))?.[1] : undefined;
        await fs.writeFile(file, JSON.stringify({ ...(salt ? { encryptionsalt: salt } : {}), config }, null, 2));
    }

    async preview(stack: string, args: string[] = [], options: RunOptions = {}): Promise<{ result: CliResult; json: PreviewJson }> {
        const result = await this.pulumi(["preview", "-s", stack, "--json", ...args], options);
        // A failed preview may print no JSON at all (the error goes to stderr).
        const json = result.stdout.trim().startsWith("{") ? JSON.parse(result.stdout) as PreviewJson : { steps: [] };
        return { result, json };
    }

    /** `pulumi <command> --json` for up, destroy and refresh: the engine's event stream, parsed. */
    async update(command: "up" | "destroy" | "refresh", stack: string, args: string[] = [], options: RunOptions = {}) {
        const result = await this.pulumi([command, "-s", stack, "--yes", "--skip-preview", "--json", ...args], options);
        return { result, ...parseEvents(result.stdout) };
    }

    stateFile(stack: string): string {
        return path.join(this.root, ".pulumi", "stacks", "sourcing-kit", `${stack}.json`);
    }

    async state(stack: string): Promise<StackState> {
        return JSON.parse(await fs.readFile(this.stateFile(stack), "utf8")) as StackState;
    }

    /** The images recorded in the real state file, by custom ID. */
    async stateImages(stack: string): Promise<Map<string, StateResource>> {
        const resources = (await this.state(stack)).checkpoint.latest?.resources ?? [];
        return new Map(resources.filter((r) => r.type === IMAGE_TYPE).map((r) => [String(r.outputs?.imageId ?? r.id), r]));
    }

    async readFile(relative: string): Promise<string> {
        return fs.readFile(path.join(this.root, relative), "utf8");
    }

    async writeFile(relative: string, content: string | Buffer): Promise<void> {
        const file = path.join(this.root, relative);
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.writeFile(file, content);
    }

    /** Kills every `pulumi` still running (and its process group: language host, provider host), then removes the copy. */
    async close(): Promise<void> {
        for (const child of this.children) killGroup(child);
        await Promise.all([...this.children].map((c) => new Promise((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(null) : c.once("close", resolve)))));
        await fs.rm(this.root, { recursive: true, force: true });
    }
}

/** A CLI output short enough for an assertion message: --json events reduced to their ops and messages, tail kept. */
export function readable(stdout: string, limit = 6000): string {
    const lines = stdout.split("\n").map((line) => {
        if (!line.startsWith("{\"sequence\"")) return line;
        const e = JSON.parse(line) as EngineEvent;
        if (e.diagnosticEvent) return e.diagnosticEvent.severity === "debug" ? undefined : `${e.diagnosticEvent.severity}: ${e.diagnosticEvent.message.trimEnd()}`;
        const step = e.resOutputsEvent?.metadata ?? e.resOpFailedEvent?.metadata;
        if (step) return `${e.resOpFailedEvent ? "FAILED " : ""}${step.op} ${step.urn}${step.diffs?.length ? ` diffs: ${step.diffs.join(",")}` : ""}`;
        if (e.summaryEvent) return `summary: ${JSON.stringify(e.summaryEvent.resourceChanges)}`;
        return undefined;
    }).filter((l): l is string => l !== undefined);
    const text = lines.join("\n");
    return text.length > limit ? `...${text.slice(-limit)}` : text;
}

/** Every live descendant of `pid` (children first), from /proc: the CLI starts its plugins in process groups of their own. */
export function descendants(pid: number): number[] {
    const children = new Map<number, number[]>();
    for (const entry of fsSync.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = fsSync.readFileSync(`/proc/${entry}/stat`, "utf8");
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
        } catch {
            // the process ended while we looked
        }
    }
    const found: number[] = [];
    const visit = (p: number) => {
        for (const c of children.get(p) ?? []) {
            found.push(c);
            visit(c);
        }
    };
    visit(pid);
    return found;
}

function kill(pid: number, signal: NodeJS.Signals): void {
    try {
        process.kill(pid, signal);
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
    }
}

/**
 * Kills a child started with `detached: true`, its process group and every process it started, by PID. Take
 * `tree` (from `descendants`) before killing the child itself: its orphans are re-parented and cannot be found after.
 */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL", tree: number[] = child.pid ? descendants(child.pid) : []): void {
    if (child.pid === undefined) return;
    kill(-child.pid, signal);
    for (const pid of tree) kill(pid, signal);
}

/** The engine events of one `--json` update, with the operations that completed and the diagnostics. */
export function parseEvents(stdout: string) {
    const events = stdout.split("\n").filter((l) => l.trim().startsWith("{")).map((l) => JSON.parse(l) as EngineEvent);
    const done = events.flatMap((e) => (e.resOutputsEvent ? [e.resOutputsEvent.metadata] : []));
    const failed = events.flatMap((e) => (e.resOpFailedEvent ? [e.resOpFailedEvent.metadata] : []));
    const diagnostics = events.flatMap((e) => (e.diagnosticEvent && e.diagnosticEvent.severity !== "debug" ? [e.diagnosticEvent] : []));
    const summary = events.find((e) => e.summaryEvent)?.summaryEvent;
    return { events, done, failed, diagnostics, summary };
}

/** Counts of step ops on our images, e.g. { create: 2, same: 5 }. */
export function imageOps(steps: { op: string; urn: string }[]): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const s of steps) if (typeOf(s.urn) === IMAGE_TYPE) counts[s.op] = (counts[s.op] ?? 0) + 1;
    return counts;
}

/** The resource type in a URN (`urn:pulumi:<stack>::<project>::<parent types$>type::<name>`); preview steps carry no type. */
export function typeOf(urn: string): string {
    const qualified = urn.split("::")[2] ?? "";
    return qualified.slice(qualified.lastIndexOf("$") + 1);
}

/** The resource name of an image step: `img-<custom ID>`. */
export function nameOf(urn: string): string {
    return urn.slice(urn.lastIndexOf("::") + 2);
}
