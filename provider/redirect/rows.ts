import { imageIdOf } from "./delivery-url";
import { shardByHash, shardLabel } from "../hash-shards";

export { shardLabel };

/**
 * Pure row logic for RedirectRows: stable sharding, the difference between two row sets, and the SQL that writes
 * it in statements within D1's limits (100 bound parameters and 100,000 bytes per statement).
 */

/** Normalised path -> delivery URL. */
export type Rows = Record<string, string>;
export interface Statement { sql: string; params: string[] }

export const MAX_ROWS_PER_SHARD = 1000;
export const D1_MAX_PARAMS = 100;
export const D1_MAX_STATEMENT_BYTES = 100_000;

/**
 * Splits rows into shards of at most `shardSize` by hash prefix (extendible hashing): a shard splits in two only
 * when it overflows, so adding rows never moves rows between the other shards. Keys are the bit prefix ("" when
 * everything fits in one shard), sorted.
 */
export function shardRows(rows: Rows, shardSize = MAX_ROWS_PER_SHARD): Map<string, Rows> {
    if (!Number.isInteger(shardSize) || shardSize < 1 || shardSize > MAX_ROWS_PER_SHARD) {
        throw new Error(`shardSize ${shardSize}: must be an integer from 1 to ${MAX_ROWS_PER_SHARD}`);
    }
    const shards = new Map<string, Rows>();
    for (const [prefix, paths] of shardByHash(Object.keys(rows), shardSize)) {
        const shard: Rows = {};
        for (const path of paths) shard[path] = rows[path]!;
        shards.set(prefix, shard);
    }
    return shards;
}


/** The stack's part of a library split across stacks (`sourcing-kit:partition`), as the rows see it. */
export interface ShardPartition { index: number; count: number }

/**
 * The owner name of a shard (the `shard` column, and the RedirectRows resource name): `<layer>-rows-<label>`, or
 * `<layer>-p<index>of<count>-rows-<label>` for one partition of several, so partitions sharing one D1 database
 * never own a row under the same name.
 */
export function shardOwnerName(layer: string, prefix: string, partition?: ShardPartition): string {
    const part = partition !== undefined && partition.count > 1 ? `-p${partition.index}of${partition.count}` : "";
    return `${layer}${part}-rows-${shardLabel(prefix)}`;
}

const PARTITIONED_OWNER = /^(.*)-p(\d+)of(\d+)-rows-[^]*$/;

/** A SQL string literal of a GLOB pattern matching `text` literally, followed by `*` when `prefix`. */
function globLiteral(text: string, prefix: boolean): string {
    const escaped = text.replace(/[*?[]/g, (c) => `[${c}]`) + (prefix ? "*" : "");
    return `'${escaped.replace(/'/g, "''")}'`;
}

/**
 * For a partitioned owner, the condition under which its upsert may take a row someone else owns: not when a sibling
 * partition of the same count owns it (the partitions are disjoint, so such a row is a stack configured apart from
 * its siblings: the row stays the sibling's). Rows of any other owner (the same partition, an earlier count, an
 * unpartitioned stack) are taken over, which is how a count change hands rows over. Undefined: no condition.
 */
function takeOverCondition(shard: string): string | undefined {
    const match = PARTITIONED_OWNER.exec(shard);
    if (!match) return undefined;
    const [, layer, index, count] = match;
    const siblings = `${globLiteral(`${layer}-p`, false).slice(0, -1)}[0-9]*of${count}-rows-*'`;
    const mine = globLiteral(`${layer}-p${index}of${count}-rows-`, true);
    return ` WHERE redirects.shard NOT GLOB ${siblings} OR redirects.shard GLOB ${mine}`;
}

export interface RowsDiff { upserts: Rows; deletes: string[] }

/** What to write to go from `olds` to `news`: added or changed rows, and removed paths. */
export function diffRows(olds: Rows, news: Rows): RowsDiff {
    const upserts: Rows = {};
    for (const [path, location] of Object.entries(news)) {
        if (olds[path] !== location) upserts[path] = location;
    }
    const deletes = Object.keys(olds).filter((path) => !(path in news)).sort();
    return { upserts, deletes };
}

const UPSERT_HEAD = "INSERT INTO redirects (path, location, image_id, shard, updated_at) VALUES ";
const UPSERT_ROW = "(?, ?, NULLIF(?, ''), ?, unixepoch())";
const UPSERT_TAIL =
    " ON CONFLICT (path) DO UPDATE SET location = excluded.location, image_id = excluded.image_id," +
    " shard = excluded.shard, updated_at = excluded.updated_at";

const bytes = (text: string): number => Buffer.byteLength(text, "utf8");

/** Groups items into statements under the parameter and byte limits. */
function pack<T>(items: T[], paramsOf: (item: T) => string[], render: (count: number) => string,
    fixedParams: string[], perItemSql: number): Statement[] {
    const statements: Statement[] = [];
    let current: string[][] = [];
    let currentBytes = 0;
    const flush = (): void => {
        if (current.length === 0) return;
        statements.push({ sql: render(current.length), params: [...fixedParams, ...current.flat()] });
        current = [];
        currentBytes = 0;
    };
    const baseBytes = bytes(render(0)) + fixedParams.reduce((n, p) => n + bytes(p), 0);
    for (const item of items) {
        const params = paramsOf(item);
        const itemBytes = perItemSql + params.reduce((n, p) => n + bytes(p), 0);
        if (baseBytes + itemBytes > D1_MAX_STATEMENT_BYTES) {
            throw new Error(`redirect row ${JSON.stringify(params[0]).slice(0, 200)}: longer than D1's ${D1_MAX_STATEMENT_BYTES}-byte statement limit`);
        }
        const tooManyParams = fixedParams.length + (current.length + 1) * params.length > D1_MAX_PARAMS;
        if (current.length > 0 && (tooManyParams || baseBytes + currentBytes + itemBytes > D1_MAX_STATEMENT_BYTES)) flush();
        current.push(params);
        currentBytes += itemBytes;
    }
    flush();
    return statements;
}

/**
 * INSERT ... ON CONFLICT DO UPDATE statements that make `rows` owned by `shard` (idempotent); a partition's shard
 * leaves alone a row its sibling partitions own (takeOverCondition).
 */
export function upsertStatements(shard: string, rows: Rows): Statement[] {
    const items = Object.keys(rows).sort().map((path) => [path, rows[path], imageIdOf(rows[path]) ?? "", shard]);
    const tail = UPSERT_TAIL + (takeOverCondition(shard) ?? "");
    const render = (n: number): string => UPSERT_HEAD + Array.from({ length: n }, () => UPSERT_ROW).join(", ") + tail;
    return pack(items, (item) => item, render, [], bytes(UPSERT_ROW) + 2);
}

/** DELETE statements for `paths`, limited to rows `shard` still owns (a row moved to another shard stays). */
export function deleteStatements(shard: string, paths: string[]): Statement[] {
    const render = (n: number): string =>
        `DELETE FROM redirects WHERE shard = ? AND path IN (${Array.from({ length: n }, () => "?").join(", ")})`;
    return pack([...paths].sort(), (path) => [path], render, [shard], 3);
}

/** Splits statements into HTTP batches of at most `size` (one D1 request each, executed as one transaction). */
export function batches<T>(statements: T[], size = 50): T[][] {
    const out: T[][] = [];
    for (let i = 0; i < statements.length; i += size) out.push(statements.slice(i, i + size));
    return out;
}
