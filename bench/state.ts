import { startEmulator } from "../test/emulator";
import { EngineDriver, isSecret, secret, SECRET_SIG, SECRET_SIG_KEY, type ResourceState } from "../test/host/engine-driver";
import { startBenchImageOrigin } from "./image-origin";
import { runPlanChild, PLAN_ACCOUNT_ID, PLAN_IMAGE_ORIGIN, PLAN_API_TOKEN_LENGTH, type PlanChildResult } from "./plan";
import { providerText } from "./provider-text";
import { errorMessage, round, type TableRow } from "./report";
import type { SectionContext, SectionResult } from "./section";

export interface StateFigures {
    /** Bytes of the serialized `__provider` text (stored twice per image: in inputs and in outputs). */
    providerBytes: number;
    /** Stored inputs + outputs of one image, compact JSON, secrets as ciphertext envelopes. */
    bytesPerImage?: number;
    bytesPerImageWithoutProvider?: number;
    /** One whole state resource (urn, type, parent, provider, propertyDependencies, …), as `pulumi stack export` indents it. */
    resourceBytesIndented?: number;
    resourceBytesCompact?: number;
    projectedStateMb10k?: number;
    projectedStateMb100k?: number;
    providerSource: "mocks (MigratedImageSet)" | "closure serializer (fallback)";
    notes: string[];
    error?: string;
}

const ACCOUNT_HASH = "ZWd9g1K7eljCn_KDTu_MWA";
const STACK = "prod";
const PROJECT = "sourcing-kit";

/**
 * Section 3: the `__provider` text and one image's inputs as a MigratedImageSet declares them under mocks, then a
 * real Check + Create of that image in the real provider host against the emulator (EngineDriver keeps the state
 * the engine would), sized as stored; the state file projected from one representative resource.
 */
export async function run(ctx: SectionContext): Promise<SectionResult> {
    const notes: string[] = [];
    let capture: PlanChildResult | undefined;
    let captureError: string | undefined;
    try {
        capture = await runPlanChild(3, ["--capture"]);
        if (!capture.sample) throw new Error("the plan child captured no CloudflareImage registration");
    } catch (err) {
        captureError = errorMessage(err);
    }
    const figures: StateFigures = {
        providerBytes: capture?.providerBytes || Buffer.byteLength(await providerText()),
        providerSource: capture?.providerBytes ? "mocks (MigratedImageSet)" : "closure serializer (fallback)",
        notes,
    };
    try {
        if (!capture?.sample) throw new Error(`no MigratedImageSet registration to measure: ${captureError}`);
        const stored = await createForReal(capture.sample.inputs);
        const inputs = withCiphertext(stored.inputs);
        const outputs = withCiphertext(stored.outputs);
        const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v));
        figures.bytesPerImage = bytes(inputs) + bytes(outputs);
        const { __provider: _a, ...inputsBare } = inputs;
        const { __provider: _b, ...outputsBare } = outputs;
        figures.bytesPerImageWithoutProvider = bytes(inputsBare) + bytes(outputsBare);
        const resource = stateResource(capture.sample.name, stored, inputs, outputs);
        figures.resourceBytesIndented = Buffer.byteLength(JSON.stringify(resource, null, 4));
        figures.resourceBytesCompact = bytes(resource);
        // Per stack: the deployment header, the stack and default-provider resources, one component per set.
        const fixed = 4_000;
        figures.projectedStateMb10k = round((fixed + 10_000 * figures.resourceBytesIndented) / 1e6, 1);
        figures.projectedStateMb100k = round((fixed + 100_000 * figures.resourceBytesIndented) / 1e6, 1);
        notes.push(
            "secrets sized as the passphrase secrets manager's envelope ({sig, ciphertext: v1:<nonce>:<AES-GCM>})",
            "per-resource overhead (urn, custom, id, type, parent, provider, propertyDependencies, additionalSecretOutputs, created, modified) from a representative resource, 4-space indented as `pulumi stack export` prints it",
        );
        ctx.log(`state: ${figures.bytesPerImage} bytes per image, ${figures.resourceBytesIndented} per state resource`);
    } catch (err) {
        figures.error = errorMessage(err);
    }
    return { json: figures, rows: tableRows(figures) };
}

/** The captured inputs created for real (url pointed at a loopback origin, then put back as declared). */
async function createForReal(declared: Record<string, unknown>): Promise<ResourceState> {
    const token = "t".repeat(PLAN_API_TOKEN_LENGTH);
    const emulator = await startEmulator({ accountId: PLAN_ACCOUNT_ID, accountHash: ACCOUNT_HASH, tokens: [token] });
    const origin = await startBenchImageOrigin();
    let driver: EngineDriver | undefined;
    try {
        const swap = (v: unknown, from: string, to: string) => JSON.parse(JSON.stringify(v).split(from).join(to)) as Record<string, unknown>;
        const inputs = swap(declared, PLAN_IMAGE_ORIGIN, origin.baseUrl);
        if (typeof inputs.apiToken === "string") inputs.apiToken = secret(token);
        driver = await EngineDriver.start({ "cloudflare:apiToken": token, "sourcing-kit:apiBaseUrl": emulator.baseUrl }, { env: { PULUMI_PROJECT: PROJECT } });
        const urn = imageUrn(String(declared.imageId ?? "image"));
        const result = await driver.up([{ urn, inputs, additionalSecretOutputs: ["apiToken"] }]);
        if (result.errors.length) throw new Error(`create in the provider host: ${result.errors[0].message}`);
        const state = driver.state.get(urn);
        if (!state) throw new Error("the driver kept no state for the created image");
        return {
            ...state,
            inputs: swap(state.inputs, origin.baseUrl, PLAN_IMAGE_ORIGIN),
            outputs: swap(state.outputs, origin.baseUrl, PLAN_IMAGE_ORIGIN),
        };
    } finally {
        await driver?.host.kill();
        await origin.close();
        await emulator.close();
    }
}

/** Secrets as a checkpoint stores them: the signature and the ciphertext, never the value. */
function withCiphertext(props: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(props)) {
        if (isSecret(v)) {
            const plainBytes = Buffer.byteLength(JSON.stringify(v.value));
            // AES-256-GCM: 12-byte nonce, ciphertext of the JSON value plus a 16-byte tag, each base64.
            const b64 = (n: number) => 4 * Math.ceil(n / 3);
            out[k] = { [SECRET_SIG_KEY]: SECRET_SIG, ciphertext: `v1:${"n".repeat(b64(12))}:${"c".repeat(b64(plainBytes + 16))}` };
        } else {
            out[k] = v;
        }
    }
    return out;
}

function imageUrn(name: string): string {
    return `urn:pulumi:${STACK}::${PROJECT}::sourcing-kit:index:MigratedImageSet$pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage::${name}`;
}

function stateResource(name: string, state: ResourceState, inputs: Record<string, unknown>, outputs: Record<string, unknown>): Record<string, unknown> {
    const now = "2026-11-28T16:00:00.123456789Z";
    return {
        urn: imageUrn(name),
        custom: true,
        id: state.id,
        type: "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage",
        inputs,
        outputs,
        parent: `urn:pulumi:${STACK}::${PROJECT}::sourcing-kit:index:MigratedImageSet::library`,
        provider: `urn:pulumi:${STACK}::${PROJECT}::pulumi:providers:pulumi-nodejs::default::3b4a1c0e-7d1f-4f7e-9a51-2f0c1d9e8b77`,
        propertyDependencies: Object.fromEntries(Object.keys(inputs).filter((k) => k !== "__provider").map((k) => [k, []])),
        additionalSecretOutputs: state.additionalSecretOutputs,
        created: now,
        modified: now,
    };
}

function tableRows(f: StateFigures): TableRow[] {
    const rows: TableRow[] = [
        {
            section: "state",
            caseName: "serialized __provider",
            result: `${f.providerBytes} bytes (${round(f.providerBytes / 1024, 2)} KiB, via ${f.providerSource})`,
            target: "<= 4 KiB",
            met: f.providerBytes <= 4096 ? "yes" : "no",
        },
    ];
    if (f.error || f.bytesPerImage === undefined) {
        rows.push({ section: "state", caseName: "stored inputs+outputs per image", result: `error: ${f.error}`, target: "<= 8 KiB", met: "error" });
        return rows;
    }
    rows.push(
        {
            section: "state",
            caseName: "stored inputs+outputs per image",
            result: `${f.bytesPerImage} bytes (${round(f.bytesPerImage / 1024, 2)} KiB; ${f.bytesPerImageWithoutProvider} without the two __provider copies)`,
            target: "<= 8 KiB",
            met: f.bytesPerImage <= 8192 ? "yes" : "no",
        },
        {
            section: "state",
            caseName: "projected state file",
            result: `${f.resourceBytesIndented} bytes/resource indented: 10,000 images ${f.projectedStateMb10k} MB, 100,000 images ${f.projectedStateMb100k} MB`,
            target: "-",
            met: "n/a",
        },
    );
    return rows;
}
