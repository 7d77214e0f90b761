// `npm run worker:export -- --stack NAME --out DIR`: the redirect Worker as a wrangler project, for stacks with
// `redirects.deployWorker: false` (the team deploys Workers with wrangler; the stack writes only the rows).
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { z } from "zod";
import { bundleWorker } from "../components/redirect/bundle";
import { SCHEMA_PATH } from "../provider/redirect/schema";
import { findPulumi, pulumiSync } from "../verify/pulumi";

/** The stack output `redirectWorker` (index.ts) that a stack with deployWorker false exports. */
export const RedirectWorkerOutputSchema = z.object({
    deployed: z.literal(false),
    mainModule: z.string(),
    compatibilityDate: z.string(),
    databaseId: z.string(),
    vars: z.record(z.string(), z.string()),
});
export type RedirectWorkerOutput = z.infer<typeof RedirectWorkerOutputSchema>;

export interface Placement {
    /** Worker name on the account. */
    name: string;
    /** A route on a proxied hostname in front of the old origin, with its zone. */
    route?: { pattern: string; zoneId?: string };
    /** Or a hostname the Worker serves as its origin. */
    customDomain?: string;
}

/** Pure: wrangler.toml for the Worker with the stack's settings (TOML basic strings, JSON-escaped). */
export function wranglerToml(worker: RedirectWorkerOutput, placement: Placement, stack: string): string {
    const q = (value: string) => JSON.stringify(value);
    const lines = [
        `# The sourcing-kit redirect Worker, from stack ${stack} (npm run worker:export). Deploy: wrangler deploy`,
        `name = ${q(placement.name)}`,
        `main = ${q(worker.mainModule)}`,
        `compatibility_date = ${q(worker.compatibilityDate)}`,
        "",
    ];
    if (placement.route) {
        const zone = placement.route.zoneId ? `, zone_id = ${q(placement.route.zoneId)}` : "";
        lines.push(`routes = [{ pattern = ${q(placement.route.pattern)}${zone} }]`, "");
    } else if (placement.customDomain) {
        lines.push(`routes = [{ pattern = ${q(placement.customDomain)}, custom_domain = true }]`, "");
    }
    lines.push("[vars]", ...Object.entries(worker.vars).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} = ${q(v)}`), "");
    lines.push("[[d1_databases]]", 'binding = "DB"', `database_name = ${q(`${placement.name}-db`)}`, `database_id = ${q(worker.databaseId)}`, "");
    return lines.join("\n");
}

/** Writes worker.js, schema.sql and wrangler.toml into `out`; returns the files written. */
export function writeWorkerProject(out: string, worker: RedirectWorkerOutput, placement: Placement, stack: string): string[] {
    fs.mkdirSync(out, { recursive: true });
    const files: [string, string][] = [
        [worker.mainModule, bundleWorker()],
        ["schema.sql", fs.readFileSync(SCHEMA_PATH, "utf8")],
        ["wrangler.toml", wranglerToml(worker, placement, stack)],
    ];
    for (const [name, text] of files) fs.writeFileSync(path.join(out, name), text);
    return files.map(([name]) => path.join(out, name));
}

const USAGE = `usage: npm run worker:export -- --stack NAME --out DIR [--name WORKER] [--route PATTERN --zone-id ID | --custom-domain HOST]

Writes the redirect Worker of a stack with redirects.deployWorker false as a wrangler project: worker.js (the
bundled module), schema.sql (the D1 table, which the stack's first up already applied) and wrangler.toml (the
stack's settings as vars, its D1 database as binding DB). Then: cd DIR && wrangler deploy.`;

export function main(argv: string[], env: NodeJS.ProcessEnv): { code: number; out: string[] } {
    let values;
    try {
        values = parseArgs({
            args: argv, strict: true, allowPositionals: false,
            options: {
                stack: { type: "string", short: "s" }, out: { type: "string" }, cwd: { type: "string" }, name: { type: "string" },
                route: { type: "string" }, "zone-id": { type: "string" }, "custom-domain": { type: "string" }, help: { type: "boolean", short: "h" },
            },
        }).values;
    } catch (error) {
        return { code: 2, out: [`worker:export: ${(error as Error).message}`, "", USAGE] };
    }
    if (values.help) return { code: 0, out: [USAGE] };
    if (!values.stack || !values.out) return { code: 2, out: ["worker:export: --stack and --out are required", "", USAGE] };
    if (values.route && values["custom-domain"]) return { code: 2, out: ["worker:export: give --route or --custom-domain, not both"] };
    const pulumi = findPulumi(env);
    if ("missing" in pulumi) return { code: 2, out: [`worker:export: ${pulumi.missing}`] };
    const got = pulumiSync(pulumi.bin, ["stack", "output", "redirectWorker", "--json", "--stack", values.stack], path.resolve(values.cwd ?? "."), env);
    if (!got.ok) return { code: 2, out: [`worker:export: cannot read the stack output redirectWorker of "${values.stack}": ${got.error}`] };
    const parsed = RedirectWorkerOutputSchema.safeParse(JSON.parse(got.stdout || "null"));
    if (!parsed.success) {
        return { code: 2, out: [`worker:export: stack "${values.stack}" has no redirectWorker output: it needs sourcing-kit:redirects with deployWorker false, and a pulumi up since`] };
    }
    const placement: Placement = {
        name: values.name ?? `sourcing-kit-${values.stack}-redirects`,
        ...(values.route ? { route: { pattern: values.route, zoneId: values["zone-id"] } } : {}),
        ...(values["custom-domain"] ? { customDomain: values["custom-domain"] } : {}),
    };
    const files = writeWorkerProject(path.resolve(values.out), parsed.data, placement, values.stack);
    const out = [`worker:export: wrote ${files.map((f) => path.relative(process.cwd(), f)).join(", ")}`];
    if (!placement.route && !placement.customDomain) out.push("  no --route or --custom-domain given: add routes to wrangler.toml before wrangler deploy, or the Worker answers only on workers.dev");
    if (parsed.data.vars.FALLBACK === "origin") out.push(`  unmapped paths go to ${parsed.data.vars.ORIGIN_URL}`);
    return { code: 0, out };
}

if (require.main === module) {
    const { code, out } = main(process.argv.slice(2), process.env);
    process.stdout.write(`${out.join("\n")}\n`);
    process.exitCode = code;
}
