import { Props, ProviderHost, ProviderHostOptions, ResourceInitFailure, startProviderHost } from "./provider-host";

/** Pulumi's wire encoding of a secret value: `{ "4dabf…": "1b47…", value }` (runtime/rpc.ts). */
export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
/** The value the engine sends for an input that is not known yet (preview). */
export const UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function secret<T>(value: T): { [SECRET_SIG_KEY]: string; value: T } {
    return { [SECRET_SIG_KEY]: SECRET_SIG, value };
}

export function isSecret(value: unknown): value is { value: unknown } {
    return !!value && typeof value === "object" && (value as Props)[SECRET_SIG_KEY] === SECRET_SIG;
}

/** What the engine sends to a provider that does not accept secrets (the dynamic host answers acceptSecrets=false). */
export function unwrapSecrets(value: unknown): unknown {
    if (isSecret(value)) return unwrapSecrets(value.value);
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (value && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}

function plain(props: Props): Props {
    return unwrapSecrets(props) as Props;
}

/** Re-marks top-level keys secret as the engine does: same key secret in `secretFrom`, or listed in `extra`. */
function markSecrets(props: Props, secretFrom: Props[], extra: string[] = []): Props {
    const out: Props = {};
    for (const [k, v] of Object.entries(props)) {
        const wasSecret = extra.includes(k) || secretFrom.some((src) => isSecret(src[k]));
        out[k] = wasSecret && !isSecret(v) ? secret(v) : v;
    }
    return out;
}

/** A resource the program declares: its URN, inputs (secret values wrapped with `secret()`) and options. */
export interface DesiredResource {
    urn: string;
    inputs: Props;
    /** The `additionalSecretOutputs` resource option. */
    additionalSecretOutputs?: string[];
}

/** One resource in the driver's state, as a checkpoint would hold it (secrets wrapped). */
export interface ResourceState {
    urn: string;
    id: string;
    inputs: Props;
    outputs: Props;
    additionalSecretOutputs: string[];
    /** Reasons of a partially failed create/update (the engine's initErrors): the next up calls update regardless. */
    initErrors?: string[];
}

export type StepOp = "create" | "update" | "replace" | "same" | "delete" | "refresh" | "drop" | "check";

export interface StepRecord {
    urn: string;
    op: StepOp;
    /** For replaces: the properties the provider named, and whether the old one was deleted first. */
    replaces?: string[];
    deleteBeforeReplace?: boolean;
}

export interface StepError {
    urn: string;
    op: StepOp;
    message: string;
    failures?: { property: string; reason: string }[];
}

export interface RunResult {
    steps: StepRecord[];
    errors: StepError[];
    /** Number of steps per op, e.g. `{ create: 20, same: 0 }`. */
    counts: Partial<Record<StepOp, number>>;
}

function result(steps: StepRecord[], errors: StepError[]): RunResult {
    const counts: Partial<Record<StepOp, number>> = {};
    for (const s of steps) counts[s.op] = (counts[s.op] ?? 0) + 1;
    return { steps, errors, counts };
}

/** Runs `work` over `items` with at most `parallel` at once; after the first failure no new item starts (engine-like). */
async function pool<T>(items: T[], parallel: number, work: (item: T) => Promise<void>, stopOnError: () => boolean): Promise<void> {
    let next = 0;
    const runners = Array.from({ length: Math.min(parallel, items.length) }, async () => {
        while (next < items.length && !stopOnError()) {
            await work(items[next++]);
        }
    });
    await Promise.all(runners);
}

/**
 * An engine-like driver over one real dynamic provider host: keeps each resource's id, inputs and outputs between
 * runs as Pulumi's state would, with secrets wrapped as the engine stores them.
 *
 * - `up(desired)`: Check → Diff → Create / Update / Replace (delete-before-create when the provider asks, else
 *   create, with the old one kept in `pendingDeletes` until deleted at the end) / Same, then Delete for resources no
 *   longer desired. At most `parallel` (default 8) steps at once; after a failure no new step starts, in-flight ones
 *   finish, and nothing is deleted. Returns `{ steps, errors, counts }`; it never throws for a step's failure.
 * - `refresh()`: Read for every resource; an empty id drops it from state.
 * - `destroy()`: Delete for every resource; the ones that succeed leave the state.
 * - `preview(desired)`: Check and Diff only (what `pulumi preview` calls).
 * - `attach(host)`: continue with a new host process (e.g. after `host.kill("SIGKILL")`), configured the same way.
 *
 * Outputs are marked secret where the input of the same key was secret or the key is in `additionalSecretOutputs`,
 * as the engine does. `state` is the live Map (tests may drop entries to simulate a lost checkpoint);
 * `checkpoint()` is its JSON, `plainTextCheckpoint()` the same with every secret shown as "[secret]".
 */
export class EngineDriver {
    readonly state = new Map<string, ResourceState>();
    /** Replaced resources (create-before-delete) whose old instance is not deleted yet; retried by up and destroy. */
    readonly pendingDeletes: ResourceState[] = [];

    constructor(public host: ProviderHost, private readonly config: Props, public parallel = 8) {}

    /** Starts a host, sends Configure with `config` (e.g. `{"cloudflare:apiToken": secret("…")}`) and returns a driver. */
    static async start(config: Props, hostOptions?: ProviderHostOptions, parallel?: number): Promise<EngineDriver> {
        const host = await startProviderHost(hostOptions);
        await host.configure(config);
        return new EngineDriver(host, config, parallel);
    }

    async attach(host: ProviderHost): Promise<void> {
        await host.configure(this.config);
        this.host = host;
    }

    /** The state as one checkpoint-like JSON text (what a file backend would write). */
    checkpoint(): string {
        return JSON.stringify({ resources: [...this.state.values()] });
    }

    /** The checkpoint as a reader of the state file sees it in plain text: every secret value is "[secret]". */
    plainTextCheckpoint(): string {
        return JSON.stringify({ resources: [...this.state.values()] }, (_k, v) => (isSecret(v) ? "[secret]" : v));
    }

    async preview(desired: DesiredResource[]): Promise<RunResult> {
        const steps: StepRecord[] = [];
        const errors: StepError[] = [];
        await pool(desired, this.parallel, async (d) => {
            try {
                const old = this.state.get(d.urn);
                const checked = await this.check(d, old);
                if (!checked) return;
                if (!old) {
                    steps.push({ urn: d.urn, op: "create" });
                    return;
                }
                const diff = await this.host.diff(old.id, d.urn, plain(old.outputs), plain(checked), plain(old.inputs));
                steps.push(this.planned(d.urn, diff, old.inputs, checked));
            } catch (e) {
                errors.push({ urn: d.urn, op: "check", message: (e as Error).message });
            }
        }, () => false);
        return result(steps, errors);
    }

    async up(desired: DesiredResource[]): Promise<RunResult> {
        const steps: StepRecord[] = [];
        const errors: StepError[] = [];
        const step = async (d: DesiredResource) => {
            const old = this.state.get(d.urn);
            let op: StepOp = "check";
            try {
                op = "check";
                const failures: StepError["failures"] = [];
                const checked = await this.check(d, old, failures);
                if (!checked) {
                    errors.push({ urn: d.urn, op: "check", message: failures.map((f) => `${f.property}: ${f.reason}`).join("; "), failures });
                    return;
                }
                if (!old) {
                    op = "create";
                    await this.create(d, checked);
                    steps.push({ urn: d.urn, op: "create" });
                    return;
                }
                const diff = await this.host.diff(old.id, d.urn, plain(old.outputs), plain(checked), plain(old.inputs));
                const planned = this.planned(d.urn, diff, old.inputs, checked, old.initErrors);
                op = planned.op;
                if (planned.op === "same") {
                    this.state.set(d.urn, { ...old, inputs: checked, additionalSecretOutputs: d.additionalSecretOutputs ?? [] });
                } else if (planned.op === "update") {
                    try {
                        const outs = await this.host.update(old.id, d.urn, plain(old.outputs), plain(checked), plain(old.inputs));
                        this.state.set(d.urn, this.record(d, old.id, checked, outs));
                    } catch (e) {
                        // The engine keeps the new outputs and the OLD inputs (pulumi/pulumi#2011).
                        if (e instanceof ResourceInitFailure) this.state.set(d.urn, { ...this.record(d, old.id, old.inputs, e.properties), initErrors: e.reasons });
                        throw e;
                    }
                } else if (planned.deleteBeforeReplace) {
                    await this.host.delete(old.id, d.urn, plain(old.outputs));
                    this.state.delete(d.urn);
                    await this.create(d, checked);
                } else {
                    await this.create(d, checked);
                    this.pendingDeletes.push(old);
                }
                steps.push(planned);
            } catch (e) {
                errors.push({ urn: d.urn, op, message: (e as Error).message });
            }
        };
        await pool(desired, this.parallel, step, () => errors.length > 0);
        if (errors.length === 0) {
            const wanted = new Set(desired.map((d) => d.urn));
            const removed = [...this.state.values()].filter((r) => !wanted.has(r.urn));
            await this.deleteAll([...this.pendingDeletes.splice(0), ...removed], steps, errors, (r) => !wanted.has(r.urn));
        }
        return result(steps, errors);
    }

    async refresh(): Promise<RunResult> {
        const steps: StepRecord[] = [];
        const errors: StepError[] = [];
        await pool([...this.state.values()], this.parallel, async (r) => {
            try {
                const read = await this.host.read(r.id, r.urn, plain(r.outputs), plain(r.inputs));
                if (!read.id) {
                    this.state.delete(r.urn);
                    steps.push({ urn: r.urn, op: "drop" });
                    return;
                }
                const inputs = read.inputs ? markSecrets(read.inputs, [r.inputs]) : r.inputs;
                const outputs = markSecrets(read.properties, [r.outputs, r.inputs], r.additionalSecretOutputs);
                this.state.set(r.urn, { ...r, id: read.id, inputs, outputs });
                steps.push({ urn: r.urn, op: "refresh" });
            } catch (e) {
                errors.push({ urn: r.urn, op: "refresh", message: (e as Error).message });
            }
        }, () => false);
        return result(steps, errors);
    }

    async destroy(): Promise<RunResult> {
        const steps: StepRecord[] = [];
        const errors: StepError[] = [];
        await this.deleteAll([...this.pendingDeletes.splice(0), ...this.state.values()], steps, errors, () => true);
        return result(steps, errors);
    }

    private async deleteAll(
        targets: ResourceState[],
        steps: StepRecord[],
        errors: StepError[],
        dropFromState: (r: ResourceState) => boolean,
    ): Promise<void> {
        await pool(targets, this.parallel, async (r) => {
            try {
                await this.host.delete(r.id, r.urn, plain(r.outputs));
                if (this.state.get(r.urn) === r && dropFromState(r)) this.state.delete(r.urn);
                steps.push({ urn: r.urn, op: "delete" });
            } catch (e) {
                if (this.state.get(r.urn) !== r) this.pendingDeletes.push(r);
                errors.push({ urn: r.urn, op: "delete", message: (e as Error).message });
            }
        }, () => false);
    }

    private async check(d: DesiredResource, old: ResourceState | undefined, failures?: StepError["failures"]): Promise<Props | undefined> {
        const res = await this.host.check(d.urn, old ? plain(old.inputs) : {}, plain(d.inputs));
        if (res.failures.length > 0) {
            failures?.push(...res.failures);
            return undefined;
        }
        return markSecrets(res.inputs, [d.inputs]);
    }

    private planned(
        urn: string,
        diff: { changes: string; replaces: string[]; deleteBeforeReplace: boolean },
        oldInputs: Props,
        newInputs: Props,
        initErrors?: string[],
    ): StepRecord {
        // As the engine: a resource with init errors gets an update even when Diff finds no change.
        if (diff.replaces.length === 0 && initErrors && initErrors.length > 0) return { urn, op: "update" };
        // DIFF_UNKNOWN (no diff method): the engine falls back to comparing the inputs itself.
        const unknownSame = diff.changes === "unknown" && JSON.stringify(plain(oldInputs)) === JSON.stringify(plain(newInputs));
        if (diff.changes === "none" || unknownSame) return { urn, op: "same" };
        if (diff.replaces.length > 0) return { urn, op: "replace", replaces: diff.replaces, deleteBeforeReplace: diff.deleteBeforeReplace };
        return { urn, op: "update" };
    }

    private async create(d: DesiredResource, checked: Props): Promise<void> {
        try {
            const res = await this.host.create(d.urn, plain(checked));
            this.state.set(d.urn, this.record(d, res.id, checked, res.properties));
        } catch (e) {
            if (e instanceof ResourceInitFailure) this.state.set(d.urn, { ...this.record(d, e.id, checked, e.properties), initErrors: e.reasons });
            throw e;
        }
    }

    private record(d: DesiredResource, id: string, checked: Props, outs: Props): ResourceState {
        const extra = d.additionalSecretOutputs ?? [];
        return { urn: d.urn, id, inputs: checked, outputs: markSecrets(outs, [checked], extra), additionalSecretOutputs: extra };
    }
}
