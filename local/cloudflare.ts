// A local Cloudflare on 127.0.0.1 for the local trial (`npm start`): the Images API emulator (with delivery URLs and
// the D1 HTTP API), the redirect Worker in workerd on the same real D1 (miniflare), and the old site as a static origin.
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { Miniflare } from "miniflare";
import { startEmulator, type Emulator } from "../test/emulator";
import { miniflareD1Backend, type D1BindingLike } from "../test/emulator/d1-miniflare";
import { workerVars } from "../components/redirect/settings";
import { applyRedirectSchema, miniflareRoot, redirectWorkerScript } from "./redirect-worker";
import { startStaticOrigin, type StaticOrigin } from "./static-origin";

/** The D1 database ID when none is given (stands in for the D1Database UUID). */
export const LOCAL_DATABASE_ID = "10ca1d1a-0000-4000-8000-000000000001";

export interface LocalCloudflareOptions {
    /** Ports on 127.0.0.1; 0 (the default) picks a free one. */
    ports?: { api?: number; worker?: number; origin?: number };
    /** Default "local-account" (Pulumi.local.yaml's). */
    accountId?: string;
    /** Default "local-hash". */
    accountHash?: string;
    /** Accepted API tokens; default ["local-token"]. */
    tokens?: string[];
    /** Images (images.json) and the D1 database (d1/) persist here across restarts; omitted: nothing persists. */
    stateDir?: string;
    /** The one D1 database, served by the D1 HTTP API and bound to the Worker as DB; default LOCAL_DATABASE_ID. */
    databaseId?: string;
    /** The old site, whose files the Worker fetches for unmapped paths; default examples/. */
    originDir?: string;
    /** Image variants delivery answers; default ["public"]. */
    variants?: string[];
    /** Create the redirect table at start (as RedirectRows would on create); default true. */
    applySchema?: boolean;
    /** The Worker's settings, as RedirectLayer's arguments of the same names (defaults: theirs). */
    worker?: { flexibleVariants?: boolean; matchHost?: boolean; cacheTtlSeconds?: number; redirectMaxAgeSeconds?: number };
}

export interface LocalCloudflare {
    /** "http://127.0.0.1:PORT/client/v4": the stack's apiBaseUrl. */
    apiBaseUrl: string;
    /** "http://127.0.0.1:PORT/cdn-cgi/imagedelivery": `${deliveryBaseUrl}/<hash>/<id>/<variant>` serves an image. */
    deliveryBaseUrl: string;
    /** "http://127.0.0.1:PORT": the redirect Worker, where old image paths are requested. */
    workerUrl: string;
    /** "http://127.0.0.1:PORT": the old site (originDir). */
    originUrl: string;
    databaseId: string;
    emulator: Emulator;
    /** The old site's server, with the requests that reached it. */
    oldOrigin: StaticOrigin;
    /** Stops everything started (emulator saved first); safe to call twice. */
    stop(): Promise<void>;
}

/** What listens on each of `ports`, in the order they start. */
const SERVICES = { origin: "old origin (static files)", worker: "redirect Worker (workerd)", api: "Images API emulator" } as const;
type Service = keyof typeof SERVICES;

/** A port already taken; the message names it, what wanted it and how to go on. */
export class PortInUseError extends Error {
    constructor(readonly port: number, readonly service: Service) {
        super(`port ${port} on 127.0.0.1 is already in use, so the ${SERVICES[service]} cannot start: stop what listens there ` +
            `(\`lsof -i :${port}\` or \`ss -ltnp 'sport = :${port}'\` names it) or choose another port (ports.${service}; 0 picks a free one)`);
        this.name = "PortInUseError";
    }
}

const isAddressInUse = (error: unknown): boolean => {
    const code = (error as { code?: string } | undefined)?.code;
    return code === "EADDRINUSE" || code === "ERR_ADDRESS_IN_USE";
};

/** Runs `start`, turning "address in use" into a PortInUseError. */
async function onPort<T>(port: number, service: Service, start: () => Promise<T>): Promise<T> {
    try {
        return await start();
    } catch (error) {
        if (isAddressInUse(error)) throw new PortInUseError(port, service);
        throw error;
    }
}

/** Fails with PortInUseError when `port` is taken (before anything starts; workerd would print a native stack). */
async function checkPortFree(port: number, service: Service): Promise<void> {
    if (port === 0) return;
    const probe = net.createServer();
    await onPort(port, service, () => new Promise<void>((resolve, reject) => {
        probe.once("error", reject);
        probe.listen(port, "127.0.0.1", () => resolve());
    }));
    await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/**
 * Runs `create` (a new Miniflare) and takes back the SIGINT and SIGTERM listeners it adds: miniflare's exit hook calls
 * process.exit() at once on either signal, before the caller's stop() could save the emulator's images or remove
 * the storage folder (npm start left both behind on Ctrl-C). Its "exit" listener stays, so workerd never outlives
 * the process; the caller stops everything on a signal (local/start.ts does).
 */
function withoutExitOnSignal<T>(create: () => T): T {
    const signals = ["SIGINT", "SIGTERM"] as const;
    const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
    const created = create();
    for (const signal of signals) {
        for (const listener of process.listeners(signal)) {
            if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
        }
    }
    return created;
}

/** Starts the old origin, the Worker with its D1, then the emulator on that D1; on any failure stops what started. */
export async function startLocalCloudflare(options: LocalCloudflareOptions = {}): Promise<LocalCloudflare> {
    const ports = { api: 0, worker: 0, origin: 0, ...options.ports };
    const databaseId = options.databaseId ?? LOCAL_DATABASE_ID;
    const stateDir = options.stateDir === undefined ? undefined : path.resolve(options.stateDir);
    if (stateDir) fs.mkdirSync(stateDir, { recursive: true });
    const stops: (() => Promise<void>)[] = [];
    const stopAll = async () => {
        const errors: unknown[] = [];
        for (const stop of stops.splice(0).reverse()) await stop().catch((e: unknown) => errors.push(e));
        if (errors.length > 0) throw errors[0];
    };
    for (const service of Object.keys(SERVICES) as Service[]) await checkPortFree(ports[service], service);
    try {
        // 1. The old site.
        const oldOrigin = await onPort(ports.origin, "origin",
            () => startStaticOrigin(options.originDir ?? path.join(__dirname, "..", "examples"), ports.origin));
        stops.push(() => oldOrigin.close());

        // 2. The Worker in workerd with its D1 database; only D1 persists (the lookup cache lives in a temp folder).
        const storage = miniflareRoot();
        const mf = withoutExitOnSignal(() => new Miniflare({
            cf: false,
            host: "127.0.0.1",
            port: ports.worker,
            defaultPersistRoot: storage.root,
            ...(stateDir ? { d1Persist: path.join(stateDir, "d1") } : {}),
            ...redirectWorkerScript(),
            bindings: workerVars({ fallback: "origin", originUrl: oldOrigin.url, ...options.worker }),
            d1Databases: { DB: databaseId },
        }));
        stops.push(() => storage.dispose(mf));
        const workerUrl = (await onPort(ports.worker, "worker", () => mf.ready)).origin;
        const db = (await mf.getD1Database("DB")) as unknown as D1BindingLike;
        if (options.applySchema !== false) await applyRedirectSchema(db);

        // 3. The Images API, delivery and the D1 HTTP API, on that same database.
        const emulator = await onPort(ports.api, "api", () => startEmulator({
            port: ports.api,
            accountId: options.accountId ?? "local-account",
            accountHash: options.accountHash ?? "local-hash",
            tokens: options.tokens ?? ["local-token"],
            variants: options.variants,
            ...(stateDir ? { persistPath: path.join(stateDir, "images.json") } : {}),
            d1: miniflareD1Backend({ [databaseId]: db }),
        }));
        stops.push(() => emulator.close());

        return {
            apiBaseUrl: emulator.baseUrl,
            deliveryBaseUrl: emulator.deliveryBaseUrl,
            workerUrl,
            originUrl: oldOrigin.url,
            databaseId,
            emulator,
            oldOrigin,
            stop: stopAll,
        };
    } catch (error) {
        await stopAll().catch(() => undefined);
        throw error;
    }
}
