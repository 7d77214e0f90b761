// Shared fixtures for the redirect tests: the bundled Worker in workerd (miniflare) on one real D1 database with
// the stack's schema, and small loopback servers standing in for the old origin and an image source.
import * as http from "http";
import { AddressInfo } from "net";
import { Miniflare } from "miniflare";
import * as pulumi from "@pulumi/pulumi";
import { RedirectRows } from "../../provider/redirect-rows";
import { applyRedirectSchema, miniflareRoot, redirectWorkerScript } from "../../local/redirect-worker";
import { D1BindingLike } from "../emulator/d1-miniflare";

/** The D1 database id the bindings share (stands in for the D1Database UUID). */
export const DATABASE_ID = "0f1e2d3c-redirect-test";

/** The miniflare D1 binding, typed for what the tests call (and usable as a D1BindingLike). */
export interface TestD1 extends D1BindingLike {
    prepare(sql: string): { bind(...values: unknown[]): { run(): Promise<unknown>; first<T>(column?: string): Promise<T | null> } };
}

export interface WorkerSetup { name: string; bindings: Record<string, string>; /** default DATABASE_ID */ databaseId?: string }

export interface RedirectWorkers {
    mf: Miniflare;
    db: TestD1;
    fetch(worker: string, url: string, init?: RequestInit): Promise<Response>;
    dispose(): Promise<void>;
}

/** One Miniflare (schema applied unless applySchema is false) running each setup as a Worker built from the real bundle, all bound to one D1 database. */
export async function startRedirectWorkers(setups: WorkerSetup[], opts: { applySchema?: boolean } = {}): Promise<RedirectWorkers> {
    const script = redirectWorkerScript();
    const { root, dispose } = miniflareRoot();
    const mf = new Miniflare({
        cf: false,
        defaultPersistRoot: root,
        workers: setups.map((setup) => ({
            name: setup.name,
            ...script,
            bindings: setup.bindings,
            d1Databases: { DB: setup.databaseId ?? DATABASE_ID },
        })),
    });
    let db: RedirectWorkers["db"];
    try {
        await mf.ready;
        db = (await mf.getD1Database("DB", setups[0].name)) as unknown as RedirectWorkers["db"];
        if (opts.applySchema !== false) await applyRedirectSchema(db);
    } catch (error) {
        await dispose(mf).catch(() => undefined);
        throw error;
    }
    return {
        mf,
        db,
        async fetch(worker, url, init) {
            const target = await mf.getWorker(worker);
            return (await target.fetch(url, { redirect: "manual", ...(init as object) })) as unknown as Response;
        },
        dispose: () => dispose(mf),
    };
}

export interface RecordingServer { url: string; requests: { method: string; url: string; body: string }[]; close(): Promise<void> }

/** What a test server answers; with a content-length, or with `chunked`, in 64 KiB pieces without one. */
export interface ServerAnswer { status?: number; type?: string; body: string | Buffer; chunked?: boolean }

/** A loopback HTTP server that records requests and answers with `respond`. */
export async function startServer(respond: (req: http.IncomingMessage, body: string) => ServerAnswer): Promise<RecordingServer> {
    const requests: RecordingServer["requests"] = [];
    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            const body = Buffer.concat(chunks).toString("utf8");
            requests.push({ method: req.method ?? "", url: req.url ?? "", body });
            const answer = respond(req, body);
            const bytes = Buffer.from(answer.body);
            res.writeHead(answer.status ?? 200, { "content-type": answer.type ?? "text/plain",
                ...(answer.chunked ? {} : { "content-length": String(bytes.length) }) });
            if (!answer.chunked) {
                res.end(bytes);
                return;
            }
            for (let i = 0; i < bytes.length; i += 64 * 1024) res.write(bytes.subarray(i, i + 64 * 1024));
            res.end();
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        requests,
        close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
}

/** A valid 1x1 PNG. */
export const PNG_1X1 = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "base64");

/**
 * Bulk-loads rows straight into the miniflare D1 (100,000 rows in about a second) for benchmarks and big tests.
 * SQL literals here, prepared statements everywhere else: test and bench data only.
 */
export async function seedRows(db: TestD1, rows: Record<string, string>, shard = "seed"): Promise<void> {
    const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;
    const exec = (db as unknown as { exec(sql: string): Promise<unknown> }).exec.bind(db);
    const entries = Object.entries(rows);
    const lines: string[] = [];
    for (let i = 0; i < entries.length; i += 400) {
        const values = entries.slice(i, i + 400)
            .map(([path, location]) => `(${literal(path)}, ${literal(location)}, NULL, ${literal(shard)}, 0)`).join(", ");
        lines.push(`INSERT INTO redirects (path, location, image_id, shard, updated_at) VALUES ${values} ` +
            "ON CONFLICT (path) DO UPDATE SET location = excluded.location, shard = excluded.shard;");
    }
    // exec runs one statement per line; each line stays under D1's 100 KB statement limit for short rows.
    for (let i = 0; i < lines.length; i += 20) await exec(lines.slice(i, i + 20).join("\n"));
}

/** The `__provider` text the program really registers for a RedirectRows (the thin shim). */
export async function serializedRowsProvider(): Promise<string> {
    let text: unknown;
    await pulumi.runtime.setMocks({
        newResource: (args) => {
            text = args.inputs.__provider;
            return { id: `${args.name}-id`, state: args.inputs };
        },
        call: () => ({}),
    }, "sourcing-kit", "rows-test", false);
    const rows = new RedirectRows("probe", { accountId: "a", databaseId: "d", shard: "probe", rows: {} });
    await new Promise<void>((resolve) => rows.urn.apply(() => resolve()));
    if (typeof text !== "string") throw new Error("RedirectRows registered no __provider text");
    return text;
}
