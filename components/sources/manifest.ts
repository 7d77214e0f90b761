import { parse } from "csv-parse";
import { createReadStream, promises as fs } from "fs";
import * as path from "path";
import { createInterface } from "readline";
import { z } from "zod";
import { isValidImageId } from "../image-id";
import { ManifestSource } from "./schema";
import { ImageSource, SourceContext, sourceError } from "./types";
import { imageFromUrl } from "./urls";

/** One manifest entry: a URL (or, for imgix, a path), with optional explicit ID, content hash and metadata. */
export interface ManifestRow {
    line: number;
    url?: string;
    path?: string;
    id?: string;
    hash?: string;
    metadata?: Record<string, string | number | boolean>;
}

export interface ManifestReadOptions {
    configPath: string;
    /** The config field holding the manifest path, named in errors (`path` or `manifest`). */
    field: string;
    /** `url`: each row needs an http(s) url; `path-or-url`: a path (imgix) or a URL whose path is taken. */
    locate: "url" | "path-or-url";
}

const metadataValue = z.union([z.string(), z.number(), z.boolean()], {
    error: "must be a string, number or boolean (metadata is one flat JSON object)",
});
const metadataSchema = z.record(z.string(), metadataValue, {
    error: "metadata must be a JSON object of strings, numbers and booleans",
});

const rowSchema = z.strictObject({
    url: z
        .string()
        .refine((u) => /^https?:\/\//i.test(u) && URL.canParse(u), { message: "url must be an absolute http(s) URL" })
        .refine((u) => !/^https?:\/\/[^/?#]*@/i.test(u), { message: "url must not carry user:password (it would be stored in state in plain text)" })
        .optional(),
    path: z.string().min(1, "path must not be empty").optional(),
    id: z
        .string()
        .refine(isValidImageId, {
            message: "id is not a valid custom ID (characters A-Z a-z 0-9 . _ ~ / -, no leading or trailing /, at most 1024, not a UUID)",
        })
        .optional(),
    hash: z.string().min(1, "hash must not be empty").optional(),
    metadata: metadataSchema.optional(),
});

function columnsFor(locate: ManifestReadOptions["locate"]): string[] {
    return locate === "url" ? ["url", "id", "hash", "metadata"] : ["path", "url", "id", "hash", "metadata"];
}

/** A manifest (.csv with a header row, or .ndjson with one JSON object a line) of URLs to migrate. */
export function manifestSource(source: ManifestSource, context: SourceContext): ImageSource {
    return {
        async *list() {
            for await (const row of readManifest(source.path, { configPath: context.configPath, field: "path", locate: "url" })) {
                yield imageFromUrl(row.url!, { id: row.id, contentHash: row.hash, metadata: row.metadata });
            }
        },
    };
}

/**
 * Streams the rows of a manifest; the first bad row stops the listing with `<configPath>.<field>: <file> line N: …`.
 * Relative paths are resolved against the working directory (the Pulumi project directory).
 */
export async function* readManifest(file: string, options: ManifestReadOptions): AsyncGenerator<ManifestRow> {
    const fullPath = path.resolve(file);
    const fail = (message: string) => sourceError(options.configPath, options.field, `${file}: ${message}`);
    try {
        const stat = await fs.stat(fullPath);
        if (!stat.isFile()) throw fail("is not a file");
    } catch (error) {
        if ((error as NodeJS.ErrnoException).code) {
            throw fail(`cannot read the manifest (${(error as NodeJS.ErrnoException).code}); paths are relative to the Pulumi project directory`);
        }
        throw error;
    }
    const columns = columnsFor(options.locate);
    const rows = /\.csv$/i.test(file) ? readCsv(fullPath, columns, fail) : readNdjson(fullPath, fail);
    for await (const { line, fields } of rows) {
        yield checkRow(line, fields, options, fail);
    }
}

type RawRow = { line: number; fields: Record<string, unknown> };

async function* readCsv(fullPath: string, columns: string[], fail: (message: string) => Error): AsyncGenerator<RawRow> {
    const input = createReadStream(fullPath);
    const parser = parse({
        bom: true,
        columns: (header: string[]) => header.map((name) => name.trim().toLowerCase()),
        skip_empty_lines: true,
        trim: true,
        info: true,
    });
    input.on("error", (error) => parser.destroy(error));
    input.pipe(parser);
    let checkedHeader = false;
    try {
        for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
            if (!checkedHeader) {
                const unknown = Object.keys(record).filter((name) => !columns.includes(name));
                if (unknown.length > 0) {
                    throw fail(`line 1: unknown column ${unknown.map((c) => `"${c}"`).join(", ")} (columns are ${columns.join(", ")})`);
                }
                checkedHeader = true;
            }
            const fields: Record<string, unknown> = {};
            for (const [name, value] of Object.entries(record)) {
                if (value === "") continue;
                fields[name] = name === "metadata" ? parseJson(value, info.lines, fail) : value;
            }
            yield { line: info.lines, fields };
        }
    } catch (error) {
        if (error instanceof Error && "lines" in error && typeof error.lines === "number") {
            throw fail(`line ${error.lines}: ${error.message}`);
        }
        throw error;
    } finally {
        input.destroy();
    }
}

async function* readNdjson(fullPath: string, fail: (message: string) => Error): AsyncGenerator<RawRow> {
    const input = createReadStream(fullPath, { encoding: "utf8" });
    const lines = createInterface({ input, crlfDelay: Infinity });
    let line = 0;
    try {
        for await (const text of lines) {
            line++;
            if (text.trim() === "") continue;
            const value = parseJson(text.replace(/^\uFEFF/, ""), line, fail);
            if (value === null || typeof value !== "object" || Array.isArray(value)) throw fail(`line ${line}: expected a JSON object`);
            yield { line, fields: value as Record<string, unknown> };
        }
    } finally {
        lines.close();
        input.destroy();
    }
}

function checkRow(line: number, fields: Record<string, unknown>, options: ManifestReadOptions, fail: (message: string) => Error): ManifestRow {
    const parsed = rowSchema.safeParse(fields);
    if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue.path.length > 1 ? `${issue.path.join(".")}: ` : "";
        const what = issue.code === "unrecognized_keys" ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(", ")}` : `${where}${issue.message}`;
        throw fail(`line ${line}: ${what}`);
    }
    const row = parsed.data;
    if (options.locate === "url" && row.path !== undefined) throw fail(`line ${line}: unknown field "path" (fields are ${columnsFor("url").join(", ")})`);
    if (options.locate === "url" && !row.url) throw fail(`line ${line}: url is required`);
    if (options.locate === "path-or-url" && !row.url && !row.path) throw fail(`line ${line}: give a path or a url`);
    return { line, ...row };
}

function parseJson(text: string, line: number, fail: (message: string) => Error): unknown {
    try {
        return JSON.parse(text);
    } catch (error) {
        throw fail(`line ${line}: not valid JSON (${(error as Error).message})`);
    }
}
