import * as pulumi from "@pulumi/pulumi";

/** One `registerResource` the program made, as the engine would see it in `pulumi preview`. */
export interface Registered {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
    custom: boolean;
}

export const PERMISSION_GROUPS_TOKEN = "cloudflare:index/getApiTokenPermissionGroupsList:getApiTokenPermissionGroupsList";

/** Groups as `GET /user/tokens/permission_groups?scope=com.cloudflare.api.account` lists them (abridged). */
export const ACCOUNT_PERMISSION_GROUPS = [
    { id: "e086da7e2179491d91ee5f35b3ca210a", name: "Workers Scripts Write", scopes: ["com.cloudflare.api.account"], category: "developer_platform", isSelectable: true },
    { id: "192192df92ee43ac90f2aeeffce67e35", name: "D1 Read", scopes: ["com.cloudflare.api.account"], category: "developer_platform", isSelectable: true },
    { id: "09b2857d1c31407795e75e3fed8617a1", name: "D1 Write", scopes: ["com.cloudflare.api.account"], category: "developer_platform", isSelectable: true },
    { id: "0cc3a61731504c89b99ec1be78b77aa0", name: "Cloudflare Images Read", scopes: ["com.cloudflare.api.account"], category: "media", isSelectable: true },
    { id: "618ec6c64a3a42f8b08bdcb147ded4e4", name: "Cloudflare Images Write", scopes: ["com.cloudflare.api.account"], category: "media", isSelectable: true },
];

/** Mocks that record every resource and invoke, answering the permission-group lookup like Cloudflare would. */
export class RecordingMocks implements pulumi.runtime.Mocks {
    readonly resources: Registered[] = [];
    readonly invokes: { token: string; inputs: Record<string, unknown> }[] = [];

    /**
     * `tokenValueKnown: false` answers the ApiToken without its value, as the first `pulumi preview` sees it
     * (the token does not exist yet).
     */
    constructor(private readonly groups = ACCOUNT_PERMISSION_GROUPS, private readonly opts: { tokenValueKnown?: boolean } = {}) {}

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string | undefined; state: Record<string, unknown> } {
        this.resources.push({ type: args.type, name: args.name, inputs: args.inputs, custom: args.custom ?? false });
        const state: Record<string, unknown> = { ...args.inputs };
        if (args.type === "cloudflare:index/apiToken:ApiToken" && this.opts.tokenValueKnown !== false) state.value = "scoped-token-value-SECRET";
        if (args.type === "cloudflare:index/d1Database:D1Database") state.uuid = "d1-uuid-0001";
        return { id: args.custom ? `${args.name}-id` : undefined, state };
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        this.invokes.push({ token: args.token, inputs: args.inputs });
        if (args.token === PERMISSION_GROUPS_TOKEN) {
            const name = typeof args.inputs.name === "string" ? decodeURIComponent(args.inputs.name) : undefined;
            const scope = typeof args.inputs.scope === "string" ? decodeURIComponent(args.inputs.scope) : undefined;
            const results = this.groups.filter((g) => (name === undefined || g.name === name) && (scope === undefined || g.scopes.includes(scope)));
            return { ...args.inputs, results };
        }
        throw new Error(`unexpected invoke ${args.token}`);
    }

    ofType(type: string): Registered[] {
        return this.resources.filter((r) => r.type === type);
    }
}

/** Resolves an Output's value (known values only; preview unknowns resolve to undefined). */
export function valueOf<T>(output: pulumi.Output<T> | undefined): Promise<T | undefined> {
    if (output === undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => output.apply((v) => { resolve(v); return v; }));
}

/** Whether an Output is marked secret. */
export function isSecret(output: pulumi.Output<unknown>): Promise<boolean> {
    return (output as unknown as { isSecret: Promise<boolean> }).isSecret;
}

/** Waits until every registration the program started has been answered by the mocks. */
export async function settled(): Promise<void> {
    const runtime = pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> };
    await runtime.waitForRPCs?.();
}

/** What the engine receives besides the inputs: parent URN and the options that matter for the stack. */
export interface RegistrationOptions { type: string; name: string; parent: string; retainOnDelete: boolean; protect: boolean }

/**
 * Wraps the mock monitor (call after setMocks) so each registration's parent and options are recorded: the
 * Mocks interface sees only type, name and inputs.
 */
export function recordRegistrationOptions(): RegistrationOptions[] {
    const seen: RegistrationOptions[] = [];
    const monitor = (pulumi.runtime as unknown as { getMonitor(): { registerResource(req: unknown, cb: unknown): unknown } }).getMonitor();
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: unknown, callback: unknown) => {
        const r = req as { getType(): string; getName(): string; getParent(): string; getRetainondelete?(): boolean; getProtect?(): boolean };
        seen.push({ type: r.getType(), name: r.getName(), parent: r.getParent(), retainOnDelete: r.getRetainondelete?.() ?? false, protect: r.getProtect?.() ?? false });
        return original(req, callback);
    };
    return seen;
}

/** URNs the mock monitor handed out: `urn:pulumi:<stack>::<project>::<parent types$type>::<name>`. */
export function registeredUrns(): string[] {
    const monitor = (pulumi.runtime as unknown as { getMonitor(): { resources?: Map<string, unknown> } | undefined }).getMonitor();
    return [...(monitor?.resources?.keys() ?? [])];
}

/** Resolves the program's outputs the way the engine would show them (Outputs unwrapped, recursively). */
export async function resolveOutputs(value: unknown): Promise<unknown> {
    if (pulumi.Output.isInstance(value)) {
        const inner = await new Promise<unknown>((done) => (value as pulumi.Output<unknown>).apply((v) => { done(v); return v; }));
        return resolveOutputs(inner);
    }
    if (Array.isArray(value)) return Promise.all(value.map(resolveOutputs));
    if (value !== null && typeof value === "object") {
        const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await resolveOutputs(v)] as const));
        return Object.fromEntries(entries.filter(([, v]) => v !== undefined));
    }
    return value;
}
