// The redirect Worker as miniflare runs it, shared by the local Cloudflare and the tests: the real bundle at the
// stack's compatibility date, its D1 schema, and a storage folder of our own for each Miniflare.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { Miniflare } from "miniflare";
import { bundleWorker, WORKER_COMPATIBILITY_DATE, WORKER_MAIN_MODULE } from "../components/redirect/bundle";
import { schemaStatements } from "../provider/redirect/schema";

/** The Worker options miniflare needs to run the deployed script (spread into a worker's options). */
export function redirectWorkerScript(): { modules: { type: "ESModule"; path: string; contents: string }[]; compatibilityDate: string } {
    return {
        modules: [{ type: "ESModule", path: WORKER_MAIN_MODULE, contents: bundleWorker() }],
        compatibilityDate: WORKER_COMPATIBILITY_DATE,
    };
}

/** The part of a D1 binding the schema needs. */
export interface D1Preparer {
    prepare(sql: string): { bind(...values: unknown[]): unknown };
    batch(statements: unknown[]): Promise<unknown[]>;
}

/** Applies schema.sql (every statement IF NOT EXISTS, so again is harmless), as RedirectRows does on create. */
export async function applyRedirectSchema(db: D1Preparer): Promise<void> {
    await db.batch(schemaStatements().map((sql) => db.prepare(sql).bind()));
}

/**
 * A temp folder of our own for one Miniflare's storage (`defaultPersistRoot`), and a dispose that removes it. Without
 * it miniflare keeps its storage in os.tmpdir()/miniflare-<random> and removes that only fire-and-forget after
 * dispose(), which a process exiting at once (mocha --exit) never waits for: every run left such folders behind.
 */
export function miniflareRoot(): { root: string; dispose(mf: Miniflare): Promise<void> } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "sk-miniflare-"));
    return {
        root,
        async dispose(mf) {
            try {
                await mf.dispose();
            } finally {
                await fs.promises.rm(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
            }
        },
    };
}
