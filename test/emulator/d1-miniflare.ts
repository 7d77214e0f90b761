// A D1Backend for the emulator that runs the D1 HTTP API's statements on miniflare D1 databases (real SQLite in
// workerd), so rows written through the API and the Worker's reads meet in one database.
import type { D1Backend, D1Result, D1Statement } from "./index";

/** The part of a D1 binding (`await mf.getD1Database("DB")`) this backend uses. */
export interface D1BindingLike {
    prepare(sql: string): { bind(...values: unknown[]): unknown };
    batch(statements: unknown[]): Promise<unknown[]>;
}

/** "D1_ERROR: no such table: x: SQLITE_ERROR" -> "no such table: x" (the emulator adds ": SQLITE_ERROR" back). */
export function sqliteMessage(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    return message.replace(/^D1_ERROR:\s*/, "").replace(/:\s*SQLITE_[A-Z_]+$/, "");
}

/** Splits a parameterless `sql` that joins several statements with semicolons, as the D1 HTTP API accepts. */
function expand(statement: D1Statement): D1Statement[] {
    if (statement.params.length > 0 || !statement.sql.includes(";")) return [statement];
    const parts = statement.sql.split(";").map((s) => s.trim()).filter((s) => s.length > 0);
    return parts.map((sql) => ({ sql, params: [] }));
}

/**
 * A backend over `databases` (D1 database UUID -> binding). A batch runs as one transaction, like D1's; an unknown
 * database id or a SQLite error rejects the whole batch with the SQLite message.
 */
export function miniflareD1Backend(databases: Record<string, D1BindingLike>): D1Backend & { queries: number } {
    const backend = {
        queries: 0,
        async query(databaseId: string, statements: D1Statement[]): Promise<D1Result[]> {
            const db = databases[databaseId];
            if (!db) throw new Error(`no such database: ${databaseId}`);
            backend.queries++;
            const expanded = statements.flatMap(expand);
            try {
                const prepared = expanded.map((s) => db.prepare(s.sql).bind(...s.params));
                const results = (await db.batch(prepared)) as { results?: Record<string, unknown>[]; meta?: Record<string, unknown> }[];
                return results.map((r) => ({ results: r.results ?? [], success: true as const, meta: r.meta ?? {} }));
            } catch (error) {
                throw new Error(sqliteMessage(error));
            }
        },
    };
    return backend;
}
