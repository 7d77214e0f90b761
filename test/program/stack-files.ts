import * as fs from "fs";
import * as path from "path";

// js-yaml ships with @pulumi/pulumi (a dependency), typed here for the one call we make.
const yaml = require("js-yaml") as { load(text: string): unknown };

export const ROOT = path.join(__dirname, "..", "..");

export interface ProjectConfigDeclaration { type?: string; default?: unknown; description?: string; secret?: boolean; items?: unknown }

export function readYaml(file: string): Record<string, unknown> {
    return yaml.load(fs.readFileSync(path.join(ROOT, file), "utf8")) as Record<string, unknown>;
}

export function projectFile(): { name: string; runtime: unknown; config: Record<string, ProjectConfigDeclaration> } {
    return readYaml("Pulumi.yaml") as ReturnType<typeof projectFile>;
}

/** A config value as the language host hands it to the program: strings as is, everything else as JSON. */
function asConfigString(value: unknown): string {
    return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * The config a stack's program would see: Pulumi.yaml defaults, overlaid with Pulumi.<stack>.yaml, plus `extra`
 * (e.g. a secret the user sets with `pulumi config set --secret`).
 */
export function stackConfig(stack: string, extra: Record<string, string> = {}): Record<string, string> {
    const values: Record<string, string> = {};
    for (const [key, declaration] of Object.entries(projectFile().config)) {
        if (declaration.default !== undefined) values[key] = asConfigString(declaration.default);
    }
    const stackFile = readYaml(`Pulumi.${stack}.yaml`).config as Record<string, unknown>;
    for (const [key, value] of Object.entries(stackFile)) values[key] = asConfigString(value);
    return { ...values, ...extra };
}
