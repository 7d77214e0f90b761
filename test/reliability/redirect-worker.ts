// The real redirect Worker bundle in workerd (miniflare) on one real D1 database, which the emulator's D1 HTTP API
// also serves (miniflareD1Backend): rows written by RedirectRows and the Worker's reads meet in one table.
import { Miniflare } from "miniflare";
import { applyRedirectSchema, miniflareRoot, redirectWorkerScript } from "../../local/redirect-worker";
import { D1BindingLike, miniflareD1Backend } from "../emulator/d1-miniflare";

export const DATABASE_ID = "5e1fab1e-reliability-d1";

interface D1Like extends D1BindingLike {
    prepare(sql: string): { bind(...values: unknown[]): { all<T>(): Promise<{ results: T[] }>; run(): Promise<unknown> } };
}

export interface RedirectWorker {
    db: D1Like;
    /** A D1Backend for startEmulator({ d1 }). */
    backend: ReturnType<typeof miniflareD1Backend>;
    fetch(url: string, init?: RequestInit): Promise<Response>;
    /** The redirect table as path -> location. */
    rows(): Promise<Record<string, string>>;
    dispose(): Promise<void>;
}

/** Starts the Worker with `bindings` (plain-text vars) and applies the schema. */
export async function startRedirectWorker(bindings: Record<string, string>): Promise<RedirectWorker> {
    const { root, dispose } = miniflareRoot();
    const mf = new Miniflare({
        cf: false,
        defaultPersistRoot: root,
        ...redirectWorkerScript(),
        bindings,
        d1Databases: { DB: DATABASE_ID },
    });
    let db: D1Like;
    try {
        await mf.ready;
        db = (await mf.getD1Database("DB")) as unknown as D1Like;
        await applyRedirectSchema(db);
    } catch (error) {
        await dispose(mf).catch(() => undefined);
        throw error;
    }
    return {
        db,
        backend: miniflareD1Backend({ [DATABASE_ID]: db }),
        async fetch(url, init) {
            return (await mf.dispatchFetch(url, { redirect: "manual", ...(init as object) })) as unknown as Response;
        },
        async rows() {
            const { results } = await db.prepare("SELECT path, location FROM redirects ORDER BY path").bind().all<{ path: string; location: string }>();
            return Object.fromEntries(results.map((r) => [r.path, r.location]));
        },
        dispose: () => dispose(mf),
    };
}
