// Shared fixtures of the reliability tests: the serialized providers, provider hosts with short request timeouts,
// the invariants every scenario checks (each desired custom ID exactly once, nothing orphaned, rows = mapping) and
// the scan for secrets in everything a user or a state file could see.
import * as pulumi from "@pulumi/pulumi";
import type { Emulator } from "../emulator";
import { seededRandom } from "../emulator/faults";
import { DesiredResource, EngineDriver, secret, unwrapSecrets } from "../host/engine-driver";
import { Props } from "../host/provider-host";
import { unpackMetadata } from "../../provider/source-metadata";

/** `npm run soak` sets SOAK=1: the larger sizes. */
export const SOAK = process.env.SOAK === "1";

export const IMAGE_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";
export const ROWS_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:RedirectRows";

export const urnOf = (type: string, name: string): string => `urn:pulumi:reliability::sourcing-kit::${type}::${name}`;

export { secret, seededRandom };

/** The serialized `__provider` text the program produces for a resource type, and its additionalSecretOutputs. */
export interface SerializedProvider { text: string; secretOutputs: string[] }

/**
 * Declares one CloudflareImage and one RedirectRows under `pulumi.runtime.setMocks` and returns what the engine
 * would receive for each: the real `__provider` text the dynamic provider host deserializes.
 */
export async function captureProviders(): Promise<{ image: SerializedProvider; rows: SerializedProvider }> {
    const inputs = new Map<string, Props>();
    const secretOutputs = new Map<string, string[]>();
    await pulumi.runtime.setMocks({
        newResource: (args) => {
            inputs.set(args.type, args.inputs);
            return { id: `${args.name}-id`, state: args.inputs };
        },
        call: () => ({}),
    }, "sourcing-kit", "reliability", false);
    const monitor = pulumi.runtime.getMonitor() as unknown as {
        registerResource: (req: { getType(): string; getAdditionalsecretoutputsList(): string[] }, cb: unknown) => unknown;
    };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, cb) => {
        secretOutputs.set(req.getType(), req.getAdditionalsecretoutputsList());
        return register(req, cb);
    };
    const { CloudflareImage } = await import("../../provider/image");
    const { RedirectRows } = await import("../../provider/redirect-rows");
    const image = new CloudflareImage("probe", {
        accountId: "acc-test", imageId: "probe/one.png", url: "https://example.com/one.png", sourceHash: "h", apiToken: "probe-token",
    });
    const rows = new RedirectRows("probe-rows", {
        accountId: "acc-test", databaseId: "db", shard: "probe", rows: { "/a.jpg": "https://imagedelivery.net/h/a/public" }, apiToken: "probe-token",
    });
    await Promise.all([image, rows].map((r) => new Promise<void>((resolve) => r.urn.apply(() => resolve()))));
    const of = (type: string): SerializedProvider => {
        const text = inputs.get(type)?.__provider;
        if (typeof text !== "string") throw new Error(`${type}: the mocked engine received no __provider text`);
        return { text, secretOutputs: secretOutputs.get(type) ?? [] };
    };
    return { image: of(IMAGE_TYPE), rows: of(ROWS_TYPE) };
}

/** Stack config for Configure: the bootstrap token (secret) and a client budget that does not slow the test down. */
export function providerConfig(bootstrapToken: string, extra: Props = {}): Props {
    return {
        "cloudflare:apiToken": secret(bootstrapToken),
        "sourcing-kit:rateLimit": JSON.stringify({ requests: 100_000, windowSeconds: 60 }),
        ...extra,
    };
}

/** A generous emulator budget: 429s only come from the bursts a test switches on. */
export const GENEROUS_RATE_LIMIT = { requests: 100_000, windowSeconds: 60 };

export interface DesiredImage { imageId: string; sourceHash: string }

/** A CloudflareImage declaration as the program would make it. */
export function imageResource(provider: SerializedProvider, name: string, inputs: Props): DesiredResource {
    return { urn: urnOf(IMAGE_TYPE, name), additionalSecretOutputs: provider.secretOutputs, inputs: { __provider: provider.text, ...inputs } };
}

export function rowsResource(provider: SerializedProvider, name: string, inputs: Props): DesiredResource {
    return { urn: urnOf(ROWS_TYPE, name), additionalSecretOutputs: provider.secretOutputs, inputs: { __provider: provider.text, ...inputs } };
}

export const isImage = (urn: string): boolean => urn.includes(`::${IMAGE_TYPE}::`);
export const isRows = (urn: string): boolean => urn.includes(`::${ROWS_TYPE}::`);

/** What went wrong with the images after a run; empty when the invariants hold. */
export interface ImageAudit { lost: string[]; orphaned: string[]; wrongHash: string[]; stateMismatch: string[] }

/**
 * The image invariants: every desired custom ID exists (exactly once: the store is keyed by ID, so a second copy
 * would be an extra image) with the desired source hash, no image exists that the state does not own, and the
 * state holds exactly the desired images.
 */
export function auditImages(emu: Emulator, driver: EngineDriver, desired: DesiredResource[]): ImageAudit {
    const wanted = new Map<string, string>();
    for (const d of desired.filter((r) => isImage(r.urn))) wanted.set(String(d.inputs.imageId), String(d.inputs.sourceHash));
    const owned = new Set<string>();
    for (const r of driver.state.values()) {
        if (isImage(r.urn)) owned.add(String((unwrapSecrets(r.outputs) as Props).imageId));
    }
    const lost = [...wanted.keys()].filter((id) => !emu.images.has(id));
    const orphaned = [...emu.images.keys()].filter((id) => !owned.has(id));
    const wrongHash = [...wanted].filter(([id, hash]) => {
        const stored = emu.images.get(id);
        return stored !== undefined && unpackMetadata(stored.meta).sourceHash !== hash;
    }).map(([id]) => id);
    const stateMismatch = [...[...owned].filter((id) => !wanted.has(id)), ...[...wanted.keys()].filter((id) => !owned.has(id))];
    return { lost, orphaned, wrongHash, stateMismatch };
}

export const CLEAN_AUDIT: ImageAudit = { lost: [], orphaned: [], wrongHash: [], stateMismatch: [] };

/** Requests the emulator counted that could change something (any route, any outcome). */
export function writeRequests(emu: Emulator): number {
    return Object.entries(emu.counters.byRoute)
        .filter(([k]) => /^(batch )?(POST|PATCH|PUT|DELETE) /.test(k))
        .reduce((n, [, v]) => n + v, 0);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `work` and SIGKILLs the driver's host as soon as `when()` holds (polled every 2 ms); resolves with the run's
 * result and whether the kill happened before the run ended.
 */
export async function crashWhen<T>(driver: EngineDriver, when: () => boolean, work: () => Promise<T>): Promise<{ result: T; killed: boolean }> {
    let done = false;
    const run = work().finally(() => (done = true));
    let killed = false;
    while (!done) {
        if (when()) {
            await driver.host.kill("SIGKILL");
            killed = true;
            break;
        }
        await sleep(2);
    }
    return { result: await run, killed };
}

/**
 * Everything a user, a log reader or a state-file reader could see during a scenario: checkpoints in plain text,
 * host stdout/stderr, Pulumi log calls, error messages, Worker responses, stack outputs.
 */
export class Exposure {
    private readonly texts: { label: string; text: string }[] = [];
    private readonly live: { label: string; read: () => string }[] = [];

    add(label: string, text: string): void {
        this.texts.push({ label, text });
    }

    /** A source read at scan time, e.g. a host's output. */
    watch(label: string, read: () => string): void {
        this.live.push({ label, read });
    }

    /** Where each named secret appears, as "label: name"; empty when nothing leaked. */
    leaks(secrets: Record<string, string>): string[] {
        const all = [...this.texts, ...this.live.map((l) => ({ label: l.label, text: l.read() }))];
        const found: string[] = [];
        for (const { label, text } of all) {
            for (const [name, value] of Object.entries(secrets)) if (text.includes(value)) found.push(`${label}: ${name}`);
        }
        return [...new Set(found)];
    }

    /** Characters scanned (for the report). */
    get size(): number {
        return [...this.texts.map((t) => t.text), ...this.live.map((l) => l.read())].reduce((n, t) => n + t.length, 0);
    }
}

/** Records a run's checkpoint (plain text, secrets shown as "[secret]") and error messages. */
export function expose(exposure: Exposure, label: string, driver: EngineDriver, errors: { message: string }[]): void {
    exposure.add(`${label} state`, driver.plainTextCheckpoint());
    for (const e of errors) exposure.add(`${label} error`, e.message);
}
