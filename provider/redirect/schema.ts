import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

/** `schema.sql`, the one schema for the stack, RedirectRows and the tests. */
export const SCHEMA_PATH = path.join(__dirname, "schema.sql");

/** The schema as separate statements (comments removed), each safe to run again (IF NOT EXISTS). */
export function schemaStatements(sqlText: string = fs.readFileSync(SCHEMA_PATH, "utf8")): string[] {
    return sqlText
        .split("\n")
        .map((line) => line.replace(/--.*$/, ""))
        .join("\n")
        .split(";")
        .map((statement) => statement.replace(/\s+/g, " ").trim())
        .filter((statement) => statement.length > 0);
}

/**
 * A short digest of the schema's statements. RedirectRows carries it as an input, so a stack upgraded to a schema
 * with a new table applies it on the next `pulumi up` even when no row changed.
 */
export function schemaVersion(statements: string[] = schemaStatements()): string {
    return createHash("sha256").update(statements.join(";\n")).digest("hex").slice(0, 16);
}
