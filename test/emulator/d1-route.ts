// The D1 HTTP query API (`/query` and `/raw`), enforcing D1's per-statement limits before the backend runs.
import type { IncomingMessage } from "node:http";
import { z } from "zod";
import { CfError, codes, noRoute, ok, type EmuResponse } from "./envelope";
import { readJsonBody } from "./request-body";

export interface D1Statement {
  sql: string;
  params: unknown[];
}

export type D1Result = { results: Record<string, unknown>[]; success: true; meta: Record<string, unknown> };

export interface D1Backend {
  /** Throw an Error whose message is the sqlite message to get {code:7500, message:"<msg>: SQLITE_ERROR"} HTTP 400. */
  query(databaseId: string, statements: D1Statement[]): Promise<D1Result[]>;
}

export const MAX_BOUND_PARAMS = 100;
export const MAX_STATEMENT_BYTES = 100_000;

const StatementSchema = z.object({ sql: z.string().min(1), params: z.array(z.unknown()).optional() });
const BodySchema = z.union([
  z.object({ batch: z.array(StatementSchema).min(1) }),
  StatementSchema,
]);

const d1Error = (message: string): CfError => new CfError(400, codes.d1Error, message);

/** Parses a query body into statements and checks each against D1's limits (pure). */
export function parseD1Body(body: unknown): D1Statement[] {
  const parsed = BodySchema.safeParse(body);
  if (!parsed.success) throw d1Error('Request body must be {"sql": string, "params"?: [...]} or {"batch": [{"sql", "params"}...]}');
  const statements = "batch" in parsed.data ? parsed.data.batch : [parsed.data];
  return statements.map((s, i) => {
    const params = s.params ?? [];
    const where = statements.length > 1 ? `statement ${i + 1}` : "the statement";
    if (params.length > MAX_BOUND_PARAMS) {
      throw d1Error(`too many SQL variables: ${where} binds ${params.length} parameters, D1 allows ${MAX_BOUND_PARAMS} per statement: SQLITE_ERROR`);
    }
    const bytes = Buffer.byteLength(s.sql);
    if (bytes > MAX_STATEMENT_BYTES) {
      throw d1Error(`statement too long: ${where} is ${bytes} bytes, D1 allows ${MAX_STATEMENT_BYTES} bytes per statement: SQLITE_ERROR`);
    }
    return { sql: s.sql, params };
  });
}

/** `/raw` answers columns and rows instead of row objects. */
function rawShape(r: D1Result): Record<string, unknown> {
  const columns = r.results.length > 0 ? Object.keys(r.results[0]) : [];
  return { ...r, results: { columns, rows: r.results.map((row) => columns.map((c) => row[c])) } };
}

export async function d1Query(
  backend: D1Backend | undefined,
  databaseId: string,
  raw: boolean,
  req: IncomingMessage,
): Promise<EmuResponse> {
  if (!backend) throw noRoute();
  const statements = parseD1Body(await readJsonBody(req, 10 * 1024 * 1024, codes.d1Error));
  let results: D1Result[];
  try {
    results = await backend.query(databaseId, statements);
  } catch (err) {
    const message = (err as Error)?.message ?? String(err);
    throw d1Error(/SQLITE_ERROR$/.test(message) ? message : `${message}: SQLITE_ERROR`);
  }
  return ok(raw ? results.map(rawShape) : results);
}
