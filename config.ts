import * as net from "net";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, type MigratedImageSetArgs } from "./components/migrated-image-set";
import type { RedirectLayerArgs } from "./components/redirect-layer";
import { SourceSchema, type Source } from "./components/sources/schema";
import { MAX_PARTITIONS, type Partition } from "./components/partition";
import { userError } from "./components/user-error";
import { RateLimitSchema } from "./provider/provider-config";
import { DEFAULT_ACCOUNT_BUDGET } from "./provider/rate-limiter";

/** The project name, and so the namespace of every key below (`sourcing-kit:accountId`, …). */
export const PROJECT = "sourcing-kit";
export const DEFAULT_API_BASE_URL = "https://api.cloudflare.com/client/v4";
/** A little below Cloudflare's 1,200 requests per 5 minutes per token, so other API users keep some room. */
/** The providers' own default account budget (provider/rate-limiter.ts), shown in outputs and used when unset. */
export const DEFAULT_RATE_LIMIT = { requests: DEFAULT_ACCOUNT_BUDGET.requests, windowSeconds: DEFAULT_ACCOUNT_BUDGET.windowSeconds } as const;

export type OnConflict = "adopt" | "overwrite" | "fail";
export type PreflightMode = "off" | "sample" | "full";
export const PREFLIGHT_MODES: readonly PreflightMode[] = ["off", "sample", "full"];
/** Source URLs the pre-flight probes per set unless `sourcing-kit:preflightSourceChecks` says otherwise. */
export const DEFAULT_PREFLIGHT_SOURCE_CHECKS = 20;

/** One entry of `sourcing-kit:sources`: what to list, plus how its images are named and filtered. */
export type SourceEntry = Pick<MigratedImageSetArgs, "idPrefix" | "include" | "exclude" | "sample" | "metadata" | "requireSignedURLs"> & {
    /** `image` (one resource per image) or `batch` (CloudflareImageBatch resources of up to batchSize images). */
    mode: ImageMode;
    batchSize: number;
    /** Stable logical name of the MigratedImageSet (given as `name`, or derived from the source). */
    name: string;
    /** `sourcing-kit:sources[i]`, for error messages further down. */
    configPath: string;
    source: Source;
    onConflict: OnConflict;
};

/** `sourcing-kit:redirects`: the RedirectLayer options a stack sets (the rest comes from the stack itself). */
export type RedirectsConfig = Pick<RedirectLayerArgs,
    "zoneId" | "routePattern" | "customDomain" | "fallback" | "originUrl" | "webhookPath" | "databaseName" | "scriptName" |
    "shardSize" | "matchHost" | "flexibleVariants" | "cacheTtlSeconds" | "redirectMaxAgeSeconds" | "deployWorker"> & {
    /** An existing D1 database (its UUID) to write the rows into, instead of one the stack creates. */
    databaseId?: string;
};

/** The validated stack configuration. Holds secrets in plain strings: never log or export it. */
export interface StackConfig {
    accountId: string;
    accountHash: string;
    apiBaseUrl?: string;
    /** `sourcing-kit:deliveryBaseUrl` without a trailing slash: https://imagedelivery.net or `https://<zone>/cdn-cgi/imagedelivery`. */
    deliveryBaseUrl: string;
    sources: SourceEntry[];
    redirects?: RedirectsConfig;
    scopedToken: boolean;
    tokenExpiresOn?: string;
    tokenAllowedIps?: string[];
    rateLimit: { requests: number; windowSeconds: number };
    useBatchApi: boolean;
    sample?: number;
    onConflict: OnConflict;
    retainOnDelete: boolean;
    exportMapping: boolean;
    /** From `sourcing-kit:webhookSecret` (secret); enables the Worker's signed webhooks. */
    webhookSecret?: string;
    /** True when `cloudflare:apiToken` is set in the stack (otherwise CLOUDFLARE_API_TOKEN is used). */
    bootstrapTokenInConfig: boolean;
    /** `cloudflare:apiToken`, else CLOUDFLARE_API_TOKEN: what the program's pre-flight calls Cloudflare with. */
    bootstrapToken: string;
    /** `sourcing-kit:preflight`: off | sample (default) | full. */
    preflight: PreflightMode;
    /** `sourcing-kit:preflightSourceChecks`: source URLs probed per set at preview and up (default 20, 0: none). */
    preflightSourceChecks: number;
    /** `sourcing-kit:requestTimeoutMs`, when set. */
    requestTimeoutMs?: number;
    /** `sourcing-kit:partition` when its count is over 1: the stack migrates only this part of every source. */
    partition?: Partition;
}

/** What the parser reads: the raw config map as Pulumi hands it over (every value a string), and the env. */
export interface RawStackConfig {
    values: Record<string, string>;
    secretKeys: ReadonlySet<string>;
    env: Readonly<Record<string, string | undefined>>;
    now: Date;
}

export type ParseResult = { ok: true; config: StackConfig } | { ok: false; problems: string[] };

const key = (name: string): string => `${PROJECT}:${name}`;

/** Every `sourcing-kit:` key the program understands (an unknown one is reported: it is usually a typo). */
export const KNOWN_KEYS = [
    "accountId", "accountHash", "sources", "redirects", "scopedToken", "tokenExpiresOn", "tokenAllowedIps",
    "apiBaseUrl", "rateLimit", "useBatchApi", "requestTimeoutMs", "sample", "onConflict", "retainOnDelete", "exportMapping",
    "cloudinaryApiSecret", "webhookSecret", "preflight", "preflightSourceChecks", "deliveryBaseUrl", "mode", "batchSize", "partition",
] as const;

/** Keys of a `sources[i]` entry that configure the image set rather than the source listing. */
const SET_OPTION_KEYS = ["name", "idPrefix", "include", "exclude", "sample", "metadata", "onConflict", "requireSignedURLs", "mode", "batchSize"];

export type ImageMode = "image" | "batch";
const MODES = ["image", "batch"] as const;
const ModeSchema = z.enum(MODES, { message: "must be image (one resource per image) or batch (resources of up to batchSize images)" });
const BatchSizeSchema = z.number({ message: `must be a whole number from 1 to ${MAX_BATCH_SIZE}` }).int({ message: `must be a whole number from 1 to ${MAX_BATCH_SIZE}` })
    .min(1, { message: `must be a whole number from 1 to ${MAX_BATCH_SIZE}` }).max(MAX_BATCH_SIZE, { message: `must be a whole number from 1 to ${MAX_BATCH_SIZE} (a batch's state is rewritten on each change)` });

const SECRET_KEYS: Record<string, { env?: string }> = {
    "cloudflare:apiToken": { env: "CLOUDFLARE_API_TOKEN" },
    [key("cloudinaryApiSecret")]: { env: "CLOUDINARY_API_SECRET" },
    [key("webhookSecret")]: {},
    // Read by the image provider to presign private S3 objects (provider/provider-config.ts).
    "aws:secretKey": { env: "AWS_SECRET_ACCESS_KEY" },
    "aws:token": { env: "AWS_SESSION_TOKEN" },
};

const OnConflictSchema = z.enum(["adopt", "overwrite", "fail"]);
const NameSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, {
    message: "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit (it names the resources)",
});

const SetOptionsSchema = z.strictObject({
    name: NameSchema.optional(),
    mode: ModeSchema.optional(),
    batchSize: BatchSizeSchema.optional(),
    idPrefix: z.string().min(1).max(200).optional(),
    include: z.array(z.string().min(1)).optional(),
    exclude: z.array(z.string().min(1)).optional(),
    sample: z.number().int().positive().optional(),
    metadata: z.record(z.string(), z.string()).optional(),
    onConflict: OnConflictSchema.optional(),
    requireSignedURLs: z.boolean().optional(),
});

const RedirectsSchema = z
    .strictObject({
        zoneId: z.string().regex(/^[0-9a-f]{32}$/, { message: "must be the zone's 32-character hex ID (dashboard > the zone > Overview > Zone ID)" }).optional(),
        routePattern: z.string().regex(/^[^\s/]+\.[^\s/]+\/\S*$/, { message: 'must be a Workers route pattern such as "media.example.com/*"' }).optional(),
        customDomain: z.string().regex(/^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$/i, { message: 'must be a hostname such as "img.example.com"' }).optional(),
        fallback: z.enum(["origin", "404"], { message: 'must be "origin" (unmapped paths go to the old origin) or "404"' }).default("origin"),
        originUrl: z.url({ protocol: /^https?$/, message: "must be an http(s) URL such as https://old-cdn.example.com" }).optional(),
        webhookPath: z.string().regex(/^\/\S*$/, { message: 'must be a path starting with "/"' }).optional(),
        databaseName: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: "must be 1-63 lowercase letters, digits or '-'" }).optional(),
        scriptName: z.string().regex(/^[a-z0-9][a-z0-9-_]{0,62}$/, { message: "must be 1-63 lowercase letters, digits, '-' or '_'" }).optional(),
        shardSize: z.number().int().min(1).max(1000).optional(),
        matchHost: z.boolean().optional(),
        flexibleVariants: z.boolean().optional(),
        cacheTtlSeconds: z.number().int().min(0).max(31536000).optional(),
        redirectMaxAgeSeconds: z.number().int().min(0).max(31536000).optional(),
        databaseId: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, {
            message: "must be the D1 database's UUID (dashboard > Storage & Databases > D1 > the database, or `wrangler d1 list`)",
        }).optional(),
        deployWorker: z.boolean().default(true),
    })
    .superRefine((r, ctx) => {
        if (r.databaseId !== undefined && r.databaseName !== undefined) {
            ctx.addIssue({ code: "custom", path: ["databaseName"], message: "names the database the stack creates; with databaseId the stack uses that existing database instead: remove one of the two" });
        }
        if (!r.deployWorker) {
            // The team deploys the Worker itself (wrangler): nothing of the Worker's placement is the stack's to set.
            for (const field of ["routePattern", "customDomain", "zoneId", "scriptName"] as const) {
                if (r[field] !== undefined) {
                    ctx.addIssue({ code: "custom", path: [field], message: "has no effect with deployWorker false (the Worker is deployed with wrangler, which sets its route); remove it, or set deployWorker true" });
                }
            }
            return;
        }
        if ((r.routePattern === undefined) === (r.customDomain === undefined)) {
            ctx.addIssue({ code: "custom", path: [], message: "set exactly one of routePattern (a route on a proxied hostname in front of the old origin) or customDomain (the Worker becomes the hostname's origin)" });
        }
        if (r.routePattern !== undefined && r.zoneId === undefined) {
            ctx.addIssue({ code: "custom", path: ["zoneId"], message: "required with routePattern: the zone's 32-character hex ID (dashboard > the zone > Overview > Zone ID)" });
        }
        if (r.fallback === "origin" && r.originUrl === undefined) {
            ctx.addIssue({ code: "custom", path: ["originUrl"], message: 'required when fallback is "origin" (unmapped paths are fetched from it); or set fallback: "404"' });
        }
    });

export const DEFAULT_DELIVERY_BASE_URL = "https://imagedelivery.net";

/**
 * `sourcing-kit:deliveryBaseUrl`: https://imagedelivery.net (default) or a zone of the same account serving
 * `https://<zone>/cdn-cgi/imagedelivery` (Cloudflare's custom-domain form). With a custom apiBaseUrl (the emulator)
 * any http(s) origin may serve that path.
 */
function parseDeliveryBaseUrl(text: string | undefined, realApi: boolean, problems: string[]): string {
    if (text === undefined) return DEFAULT_DELIVERY_BASE_URL;
    const hint = `such as ${DEFAULT_DELIVERY_BASE_URL} or https://images.example.com/cdn-cgi/imagedelivery`;
    let url: URL;
    try {
        url = new URL(text);
    } catch {
        problems.push(`${key("deliveryBaseUrl")}: must be a URL ${hint} (got ${JSON.stringify(text)})`);
        return DEFAULT_DELIVERY_BASE_URL;
    }
    const path = url.pathname.replace(/\/+$/, "");
    const problem =
        !(url.protocol === "https:" || (!realApi && url.protocol === "http:")) ? "must use https" :
        url.search !== "" || url.hash !== "" || url.username !== "" ? "must not have a query, fragment or credentials" :
        url.hostname === "imagedelivery.net" ? (path === "" ? undefined : "on imagedelivery.net must have no path") :
        path !== "/cdn-cgi/imagedelivery" ? "on your own domain must end in /cdn-cgi/imagedelivery (the zone must be on the same Cloudflare account as the images)" :
        undefined;
    if (problem !== undefined) {
        problems.push(`${key("deliveryBaseUrl")}: ${problem}, ${hint} (got ${JSON.stringify(text)})`);
        return DEFAULT_DELIVERY_BASE_URL;
    }
    return `${url.origin}${path}`;
}

/** CIDR such as 203.0.113.0/24 or 2001:db8::/32 (a bare address means a single host). */
function isCidr(value: string): boolean {
    const [address, prefix, ...rest] = value.split("/");
    if (rest.length > 0 || address === undefined) return false;
    const family = net.isIP(address);
    if (family === 0) return false;
    if (prefix === undefined) return true;
    if (!/^\d{1,3}$/.test(prefix)) return false;
    return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** `sources[1]` + ["bucket"] -> `sources[1].bucket`. */
export function configPath(base: string, segments: readonly PropertyKey[]): string {
    return segments.reduce<string>(
        (acc, s) => (typeof s === "number" ? `${acc}[${s}]` : `${acc}.${String(s)}`),
        base,
    );
}

const ZOD_DEFAULT_MESSAGE = /^(Invalid input|Invalid option|Invalid discriminator|Too small|Too big|Unrecognized key|Invalid URL|Invalid string|Invalid)/;

function describe(value: unknown): string {
    if (value === null) return "null";
    if (Array.isArray(value)) return "an array";
    if (typeof value === "object") return "an object";
    if (typeof value === "string") return JSON.stringify(value);
    return `${typeof value} ${String(value)}`;
}

/** One zod issue -> the problems a user reads, each `path: message`. */
function issueProblems(base: string, issue: z.core.$ZodIssue): string[] {
    const at = configPath(base, issue.path);
    const custom = !ZOD_DEFAULT_MESSAGE.test(issue.message);
    switch (issue.code) {
        case "invalid_type":
            if (!("input" in issue) || issue.input === undefined) return [`${at}: required`];
            return [`${at}: must be ${article(issue.expected)} (got ${describe(issue.input)})`];
        case "invalid_value":
            if (custom) return [`${at}: ${issue.message}`];
            return [`${at}: must be one of ${issue.values.map((v) => String(v)).join(", ")} (got ${describe((issue as { input?: unknown }).input)})`];
        case "unrecognized_keys":
            return issue.keys.map((k) => `${configPath(at, [k])}: unknown key`);
        case "invalid_union": {
            const u = issue as { note?: string; options?: unknown[]; input?: unknown };
            if (u.note === "No matching discriminator" && u.options) {
                const got = typeof u.input === "object" && u.input !== null && "kind" in u.input ? describe((u.input as { kind: unknown }).kind) : undefined;
                return [got === undefined ? `${at}: required (one of ${u.options.join(", ")})` : `${at}: must be one of ${u.options.join(", ")} (got ${got})`];
            }
            return [`${at}: ${issue.message}`];
        }
        case "too_small":
            if (custom) return [`${at}: ${issue.message}`];
            if (issue.origin === "string" && Number(issue.minimum) === 1) return [`${at}: must not be empty`];
            if (issue.origin === "array") return [`${at}: must have at least ${issue.minimum} item(s)`];
            return [`${at}: must be ${issue.inclusive ? "at least" : "greater than"} ${issue.minimum}`];
        case "too_big":
            if (custom) return [`${at}: ${issue.message}`];
            if (issue.origin === "string") return [`${at}: must be at most ${issue.maximum} characters`];
            if (issue.origin === "array") return [`${at}: must have at most ${issue.maximum} item(s)`];
            return [`${at}: must be at most ${issue.maximum}`];
        default:
            return [`${at}: ${custom ? issue.message : issue.message.toLowerCase()}`];
    }
}

function article(type: string): string {
    if (type === "int") return "an integer";
    if (type === "object" || type === "array") return `an ${type}`;
    return `a ${type}`;
}

function zodProblems(base: string, error: z.ZodError): string[] {
    return error.issues.flatMap((issue) => issueProblems(base, issue));
}

/** Levenshtein distance, for "did you mean" on misspelt keys. */
function distance(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        let diagonal = row[0]!;
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const above = row[j]!;
            row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
            diagonal = above;
        }
    }
    return row[b.length]!;
}

/** Lowercase slug for resource names, at most `max` characters: "Products/Shoes" -> "products-shoes". */
export function slug(text: string, max = 63): string {
    return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, max).replace(/-+$/, "");
}

/**
 * The default logical name of a source's MigratedImageSet: derived from what the source points at (not its
 * position in the list), so reordering `sources` never renames, and so never replaces, the images.
 */
export function defaultSetName(source: { kind: string } & Record<string, unknown>): string {
    const str = (k: string): string => (typeof source[k] === "string" ? (source[k] as string) : "");
    const parts: string[] = [source.kind];
    switch (source.kind) {
        case "s3": parts.push(str("bucket"), str("prefix")); break;
        case "cloudinary": parts.push(str("cloudName"), str("prefix")); break;
        case "imgix": parts.push(str("domain")); break;
        case "local": parts.push(path.basename(str("dir"))); break;
        case "manifest": parts.push(path.basename(str("path")).replace(/\.[^.]*$/, "")); break;
    }
    return slug(parts.filter((p) => p.length > 0).join("-"));
}

function parseJson(k: string, text: string, problems: string[]): unknown {
    try {
        return JSON.parse(text);
    } catch {
        problems.push(`${k}: not valid YAML/JSON structured config (set it in Pulumi.<stack>.yaml as a YAML ${k.endsWith("sources") ? "list" : "mapping"})`);
        return undefined;
    }
}

function parseBoolean(k: string, text: string | undefined, fallback: boolean, problems: string[]): boolean {
    if (text === undefined) return fallback;
    if (text === "true" || text === "false") return text === "true";
    problems.push(`${k}: must be true or false (got ${JSON.stringify(text)})`);
    return fallback;
}

function parsePositiveInt(k: string, text: string | undefined, problems: string[]): number | undefined {
    if (text === undefined) return undefined;
    if (/^[1-9]\d*$/.test(text.trim())) return Number(text.trim());
    problems.push(`${k}: must be a whole number of at least 1 (got ${JSON.stringify(text)})`);
    return undefined;
}

/** A whole number, also as the string `pulumi config set --path` may store it. */
function wholeNumber(value: unknown): number | undefined {
    if (typeof value === "number" && Number.isInteger(value)) return value;
    if (typeof value === "string" && /^\d{1,9}$/.test(value.trim())) return Number(value.trim());
    return undefined;
}

/**
 * `sourcing-kit:partition`: `{ index, count }`, this stack's part of every source. Undefined when unset or when
 * count is 1 (the whole library: names stay those of an unpartitioned stack).
 */
function parsePartition(text: string | undefined, problems: string[]): Partition | undefined {
    if (text === undefined) return undefined;
    const k = key("partition");
    const example = `e.g. pulumi config set --path ${k}.index 3 and pulumi config set --path ${k}.count 8 (stack 3 of 8)`;
    const raw = parseJson(k, text, problems);
    if (raw === undefined) return undefined;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        problems.push(`${k}: must be a mapping with index and count, ${example} (got ${describe(raw)})`);
        return undefined;
    }
    const record = raw as Record<string, unknown>;
    const before = problems.length;
    for (const field of Object.keys(record)) {
        if (field !== "index" && field !== "count") problems.push(`${k}.${field}: unknown key (a partition has only index and count)`);
    }
    const count = wholeNumber(record.count);
    if (record.count === undefined) {
        problems.push(`${k}.count: required: how many stacks share the library, from 1 to ${MAX_PARTITIONS}; ${example}`);
    } else if (count === undefined || count < 1 || count > MAX_PARTITIONS) {
        problems.push(`${k}.count: must be a whole number from 1 to ${MAX_PARTITIONS} (got ${describe(record.count)})`);
    }
    const index = wholeNumber(record.index);
    const countOk = count !== undefined && count >= 1 && count <= MAX_PARTITIONS;
    const range = countOk ? `from 0 to ${count - 1}` : "from 0 to count - 1";
    if (record.index === undefined) {
        problems.push(`${k}.index: required: this stack's part, a whole number ${range}; ${example}`);
    } else if (index === undefined || index < 0 || (countOk && index >= count)) {
        problems.push(`${k}.index: must be a whole number ${range}${countOk ? ` (partitions are numbered from 0, so the last of ${count} is ${count - 1})` : ""} (got ${describe(record.index)})`);
    }
    if (problems.length > before || count === undefined || index === undefined) return undefined;
    return count === 1 ? undefined : { index, count };
}

interface SourceDefaults { onConflict: OnConflict; sample?: number; cloudinaryApiSecret?: string; mode: ImageMode; batchSize: number }

function parseSources(values: Record<string, string>, env: RawStackConfig["env"], defaults: SourceDefaults, problems: string[]): SourceEntry[] {
    const k = key("sources");
    const text = values[k];
    if (text === undefined) {
        problems.push(`${k}: required (a list of sources, e.g. - kind: s3 with bucket: my-bucket; see the README's configuration reference)`);
        return [];
    }
    const raw = parseJson(k, text, problems);
    if (raw === undefined) return [];
    if (!Array.isArray(raw)) {
        problems.push(`${k}: must be a list of sources (got ${describe(raw)})`);
        return [];
    }
    if (raw.length === 0) {
        problems.push(`${k}: must list at least one source`);
        return [];
    }
    const entries: SourceEntry[] = [];
    const names = new Map<string, string>();
    raw.forEach((item: unknown, i: number) => {
        const at = `${k}[${i}]`;
        if (typeof item !== "object" || item === null || Array.isArray(item)) {
            problems.push(`${at}: must be a mapping with a kind (got ${describe(item)})`);
            return;
        }
        const record = item as Record<string, unknown>;
        const optionsPart: Record<string, unknown> = {};
        const sourcePart: Record<string, unknown> = {};
        for (const [field, value] of Object.entries(record)) {
            (SET_OPTION_KEYS.includes(field) ? optionsPart : sourcePart)[field] = value;
        }
        if (record.kind === "cloudinary") {
            if ("apiSecret" in sourcePart) {
                problems.push(`${at}.apiSecret: do not put secrets in sources (they would sit in Pulumi.<stack>.yaml in plain text); run pulumi config set --secret ${key("cloudinaryApiSecret")} <secret>, or set CLOUDINARY_API_SECRET`);
                delete sourcePart.apiSecret;
            }
            const secret = defaults.cloudinaryApiSecret ?? env.CLOUDINARY_API_SECRET;
            if (secret === undefined) {
                sourcePart.apiSecret = "(missing)"; // reported just below, once, by the key that fixes it
                problems.push(`${key("cloudinaryApiSecret")}: required by ${at} (kind cloudinary); run pulumi config set --secret ${key("cloudinaryApiSecret")} <secret>, or set CLOUDINARY_API_SECRET`);
            } else {
                sourcePart.apiSecret = secret;
            }
        }
        const options = SetOptionsSchema.safeParse(optionsPart, { reportInput: true });
        if (!options.success) problems.push(...zodProblems(at, options.error));
        const source = SourceSchema.safeParse(sourcePart, { reportInput: true });
        if (!source.success) {
            problems.push(...zodProblems(at, source.error));
        } else {
            // Keys the source schema dropped are unknown to it: most often a misspelt option.
            const kept = source.data as Record<string, unknown>;
            for (const field of Object.keys(sourcePart)) {
                if (!(field in kept)) problems.push(`${at}.${field}: unknown key for kind ${String(record.kind)}`);
            }
        }
        if (!options.success || !source.success) return;
        const name = options.data.name ?? defaultSetName(source.data as { kind: string } & Record<string, unknown>);
        const earlier = names.get(name);
        if (earlier !== undefined) {
            problems.push(`${at}.name: "${name}" is also the name of ${earlier}; give each source a distinct name`);
            return;
        }
        names.set(name, at);
        const { name: _given, ...setOptions } = options.data;
        entries.push({
            ...setOptions,
            name,
            configPath: at,
            source: source.data,
            onConflict: setOptions.onConflict ?? defaults.onConflict,
            sample: setOptions.sample ?? defaults.sample,
            mode: setOptions.mode ?? defaults.mode,
            batchSize: setOptions.batchSize ?? defaults.batchSize,
        });
    });
    return entries;
}

/**
 * Validates the whole stack configuration and reports every problem at once, each prefixed with its config
 * path (`sourcing-kit:sources[1].bucket: required`). Pure: no Pulumi runtime, no I/O.
 */
export function parseStackConfig(input: RawStackConfig): ParseResult {
    const { values, secretKeys, env } = input;
    const problems: string[] = [];

    for (const k of Object.keys(values)) {
        if (!k.startsWith(`${PROJECT}:`)) continue;
        const name = k.slice(PROJECT.length + 1);
        if ((KNOWN_KEYS as readonly string[]).includes(name)) continue;
        const near = KNOWN_KEYS.find((known) => distance(known.toLowerCase(), name.toLowerCase()) <= 2);
        problems.push(`${k}: unknown key${near ? ` (did you mean ${key(near)}?)` : ""}`);
    }

    const secretValue = (k: string): string | undefined => {
        const value = values[k];
        if (value === undefined) return undefined;
        if (!secretKeys.has(k)) {
            problems.push(`${k}: must be stored as a secret; run pulumi config set --secret ${k} <value>${SECRET_KEYS[k]?.env ? ` (or set ${SECRET_KEYS[k]!.env} instead)` : ""}`);
        }
        return value;
    };
    const bootstrapToken = secretValue("cloudflare:apiToken");
    if (bootstrapToken === undefined && !env.CLOUDFLARE_API_TOKEN) {
        problems.push("cloudflare:apiToken: required; run pulumi config set --secret cloudflare:apiToken <token>, or set CLOUDFLARE_API_TOKEN");
    }
    const cloudinarySecret = secretValue(key("cloudinaryApiSecret"));
    const webhookSecret = secretValue(key("webhookSecret"));
    secretValue("aws:secretKey");
    secretValue("aws:token");

    const apiBaseUrlText = values[key("apiBaseUrl")];
    let apiBaseUrl: string | undefined;
    if (apiBaseUrlText !== undefined) {
        const parsed = z.url({ protocol: /^https?$/ }).safeParse(apiBaseUrlText);
        // The default is left unset: the providers assume it, and every image's state stays smaller.
        if (parsed.success) apiBaseUrl = apiBaseUrlText.replace(/\/+$/, "") === DEFAULT_API_BASE_URL ? undefined : apiBaseUrlText.replace(/\/+$/, "");
        else problems.push(`${key("apiBaseUrl")}: must be an http(s) URL such as ${DEFAULT_API_BASE_URL} (got ${JSON.stringify(apiBaseUrlText)})`);
    }
    const realApi = apiBaseUrl === undefined;

    const accountId = values[key("accountId")];
    if (accountId === undefined || accountId.trim() === "") {
        problems.push(`${key("accountId")}: required (dashboard > Account home > Account ID); run pulumi config set ${key("accountId")} <id>`);
    } else if (realApi && !/^[0-9a-f]{32}$/.test(accountId)) {
        problems.push(`${key("accountId")}: must be the 32-character hex account ID (dashboard > Account home > Account ID), got ${JSON.stringify(accountId)}`);
    }
    const accountHash = values[key("accountHash")];
    if (accountHash === undefined || accountHash.trim() === "") {
        problems.push(`${key("accountHash")}: required (Images > Overview > Developer resources > Account hash); run pulumi config set ${key("accountHash")} <hash>`);
    } else if (!/^[A-Za-z0-9_-]+$/.test(accountHash)) {
        problems.push(`${key("accountHash")}: must contain only letters, digits, '-' or '_' (it is a path segment of imagedelivery.net URLs), got ${JSON.stringify(accountHash)}`);
    }

    const deliveryBaseUrl = parseDeliveryBaseUrl(values[key("deliveryBaseUrl")], realApi, problems);

    const scopedToken = parseBoolean(key("scopedToken"), values[key("scopedToken")], true, problems);
    const useBatchApi = parseBoolean(key("useBatchApi"), values[key("useBatchApi")], false, problems);
    const retainOnDelete = parseBoolean(key("retainOnDelete"), values[key("retainOnDelete")], false, problems);
    const exportMapping = parseBoolean(key("exportMapping"), values[key("exportMapping")], false, problems);
    const sample = parsePositiveInt(key("sample"), values[key("sample")], problems);
    // Read by the providers' configure(); validated here so a bad value fails before anything is declared.
    const requestTimeoutMs = parsePositiveInt(key("requestTimeoutMs"), values[key("requestTimeoutMs")], problems);

    const preflightText = values[key("preflight")];
    let preflight: PreflightMode = "sample";
    if (preflightText !== undefined) {
        if ((PREFLIGHT_MODES as readonly string[]).includes(preflightText)) preflight = preflightText as PreflightMode;
        else problems.push(`${key("preflight")}: must be one of off, sample, full (got ${JSON.stringify(preflightText)})`);
    }
    let preflightSourceChecks = DEFAULT_PREFLIGHT_SOURCE_CHECKS;
    const checksText = values[key("preflightSourceChecks")];
    if (checksText !== undefined) {
        if (/^\d+$/.test(checksText.trim()) && Number(checksText) <= 1000) preflightSourceChecks = Number(checksText.trim());
        else problems.push(`${key("preflightSourceChecks")}: must be a whole number from 0 (no source check) to 1000 (got ${JSON.stringify(checksText)})`);
    }

    let onConflict: OnConflict = "adopt";
    const onConflictText = values[key("onConflict")];
    if (onConflictText !== undefined) {
        const parsed = OnConflictSchema.safeParse(onConflictText);
        if (parsed.success) onConflict = parsed.data;
        else problems.push(`${key("onConflict")}: must be one of adopt, overwrite, fail (got ${JSON.stringify(onConflictText)})`);
    }

    let rateLimit: StackConfig["rateLimit"] = { ...DEFAULT_RATE_LIMIT };
    const rateLimitText = values[key("rateLimit")];
    if (rateLimitText !== undefined) {
        const raw = parseJson(key("rateLimit"), rateLimitText, problems);
        if (raw !== undefined) {
            const parsed = RateLimitSchema.safeParse(raw, { reportInput: true });
            if (parsed.success) rateLimit = parsed.data;
            else problems.push(...zodProblems(key("rateLimit"), parsed.error));
        }
    }

    let tokenExpiresOn: string | undefined;
    const expiresText = values[key("tokenExpiresOn")];
    if (expiresText !== undefined) {
        const when = Date.parse(expiresText);
        if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(expiresText) || Number.isNaN(when)) {
            problems.push(`${key("tokenExpiresOn")}: must be a UTC timestamp such as 2027-01-31T00:00:00Z (got ${JSON.stringify(expiresText)})`);
        } else if (when <= input.now.getTime()) {
            problems.push(`${key("tokenExpiresOn")}: ${expiresText} is in the past; the token would be dead on arrival`);
        } else {
            tokenExpiresOn = expiresText;
        }
    }
    let tokenAllowedIps: string[] | undefined;
    const ipsText = values[key("tokenAllowedIps")];
    if (ipsText !== undefined) {
        const raw = parseJson(key("tokenAllowedIps"), ipsText, problems);
        if (raw !== undefined) {
            if (!Array.isArray(raw) || raw.length === 0) {
                problems.push(`${key("tokenAllowedIps")}: must be a non-empty list of CIDRs such as 203.0.113.0/24`);
            } else {
                raw.forEach((ip: unknown, i: number) => {
                    if (typeof ip !== "string" || !isCidr(ip)) problems.push(`${key("tokenAllowedIps")}[${i}]: must be an IPv4 or IPv6 CIDR such as 203.0.113.0/24 (got ${describe(ip)})`);
                });
                tokenAllowedIps = raw as string[];
            }
        }
    }

    let redirects: RedirectsConfig | undefined;
    let workerDeployed = true;
    const redirectsText = values[key("redirects")];
    if (redirectsText !== undefined) {
        const raw = parseJson(key("redirects"), redirectsText, problems);
        // Known even when another redirects field is invalid, so the webhook check below still applies.
        workerDeployed = !(typeof raw === "object" && raw !== null && (raw as { deployWorker?: unknown }).deployWorker === false);
        if (raw !== undefined && typeof raw === "object" && raw !== null && !Array.isArray(raw) && "webhookSecret" in raw) {
            problems.push(`${key("redirects")}.webhookSecret: do not put secrets in redirects; run pulumi config set --secret ${key("webhookSecret")} <secret>`);
            delete (raw as Record<string, unknown>).webhookSecret;
        }
        if (raw !== undefined) {
            const parsed = RedirectsSchema.safeParse(raw, { reportInput: true });
            if (parsed.success) redirects = parsed.data;
            else problems.push(...zodProblems(key("redirects"), parsed.error));
        }
    }

    let mode: ImageMode = "image";
    const modeText = values[key("mode")];
    if (modeText !== undefined) {
        if ((MODES as readonly string[]).includes(modeText)) mode = modeText as ImageMode;
        else problems.push(`${key("mode")}: must be image (one resource per image, the default) or batch (resources of up to batchSize images; for 10,000 images and more) (got ${JSON.stringify(modeText)})`);
    }
    let batchSize = DEFAULT_BATCH_SIZE;
    const batchSizeText = values[key("batchSize")];
    if (batchSizeText !== undefined) {
        const n = /^\d+$/.test(batchSizeText.trim()) ? Number(batchSizeText.trim()) : NaN;
        if (Number.isInteger(n) && n >= 1 && n <= MAX_BATCH_SIZE) batchSize = n;
        else problems.push(`${key("batchSize")}: must be a whole number from 1 to ${MAX_BATCH_SIZE} (got ${JSON.stringify(batchSizeText)})`);
    }

    const sources = parseSources(values, env, { onConflict, sample, cloudinaryApiSecret: cloudinarySecret, mode, batchSize }, problems);

    const partition = parsePartition(values[key("partition")], problems);
    if (partition !== undefined && redirects !== undefined) {
        const of = `with ${key("partition")} count ${partition.count}`;
        // One table for all partitions: a database created by each stack would split the redirects across N databases.
        if (redirects.databaseId === undefined) {
            problems.push(`${key("redirects")}.databaseId: required ${of}: every partition's stack writes its rows into one D1 database. ` +
                `Create it once (wrangler d1 create <name>) and set its UUID in every partition's stack (pulumi config set --path ${key("redirects")}.databaseId <uuid>)`);
        }
        // One Worker serves every partition's rows; a second on the same route or domain would fight the first for it.
        if (redirects.deployWorker && partition.index > 0) {
            problems.push(`${key("redirects")}.deployWorker: only partition 0 deploys the redirect Worker (it serves every partition's rows); ` +
                `set ${key("redirects")}.deployWorker false in the stack of partition ${partition.index}, with no routePattern, customDomain, zoneId or scriptName`);
        }
    }

    if (!realApi) {
        if (scopedToken) {
            problems.push(`${key("scopedToken")}: set it to false with a custom ${key("apiBaseUrl")}: tokens are created on the real Cloudflare API (the emulator has none)`);
        }
        // Rows go through the D1 HTTP API at apiBaseUrl (the emulator has it); creating D1 or a Worker needs the real API.
        if (redirects !== undefined && (redirects.databaseId === undefined || redirects.deployWorker)) {
            problems.push(`${key("redirects")}: with a custom ${key("apiBaseUrl")} set redirects.databaseId (an existing D1 database) and redirects.deployWorker false: ` +
                `creating D1 databases and Workers needs the real Cloudflare API`);
        }
    }
    if (!scopedToken) {
        if (expiresText !== undefined) problems.push(`${key("tokenExpiresOn")}: has no effect with ${key("scopedToken")} false; remove it`);
        if (ipsText !== undefined) problems.push(`${key("tokenAllowedIps")}: has no effect with ${key("scopedToken")} false; remove it`);
    }
    if (webhookSecret !== undefined && redirectsText !== undefined && workerDeployed && !scopedToken) {
        problems.push(`${key("webhookSecret")}: needs ${key("scopedToken")} true: the Worker handles webhooks with the scoped token (the bootstrap token never goes into a Worker)`);
    }
    if (webhookSecret !== undefined && redirectsText !== undefined && scopedToken && ipsText !== undefined) {
        problems.push(`${key("tokenAllowedIps")}: the redirect Worker calls the Images API with the scoped token from Cloudflare's edge, outside these addresses, so every webhook would fail; remove ${key("tokenAllowedIps")} or ${key("webhookSecret")}`);
    }
    if (webhookSecret !== undefined && redirectsText !== undefined && !workerDeployed) {
        problems.push(`${key("webhookSecret")}: the stack does not deploy the Worker (redirects.deployWorker false), so it cannot give it the secret; ` +
            `remove it and run wrangler secret put WEBHOOK_SECRET (README "Deploying the Worker yourself")`);
    }
    if (webhookSecret !== undefined && redirectsText === undefined) {
        problems.push(`${key("webhookSecret")}: has no effect without ${key("redirects")} (webhooks are served by the redirect Worker); remove it or configure redirects`);
    }

    if (problems.length > 0) return { ok: false, problems };
    return {
        ok: true,
        config: {
            accountId: accountId!,
            accountHash: accountHash!,
            apiBaseUrl,
            deliveryBaseUrl,
            sources,
            redirects,
            scopedToken,
            tokenExpiresOn,
            tokenAllowedIps,
            rateLimit,
            useBatchApi,
            sample,
            onConflict,
            retainOnDelete,
            exportMapping,
            webhookSecret,
            bootstrapTokenInConfig: bootstrapToken !== undefined,
            bootstrapToken: bootstrapToken ?? env.CLOUDFLARE_API_TOKEN!,
            preflight,
            preflightSourceChecks,
            ...(requestTimeoutMs !== undefined ? { requestTimeoutMs } : {}),
            ...(partition !== undefined ? { partition } : {}),
        },
    };
}

/** The problems as one message, one per line, with the fix-it hint at the end. */
export function formatProblems(problems: readonly string[]): string {
    const noun = problems.length === 1 ? "problem" : "problems";
    return [`the stack configuration has ${problems.length} ${noun}:`, ...problems.map((p) => `  - ${p}`),
        `fix them with pulumi config set (add --secret for secrets, --path for nested keys) or in Pulumi.${pulumi.getStack()}.yaml`].join("\n");
}

/** Reads the stack's configuration from the Pulumi runtime and validates it, or stops the program cleanly. */
export function loadStackConfig(env: NodeJS.ProcessEnv = process.env, now: Date = new Date()): StackConfig {
    const values = pulumi.runtime.allConfig();
    const isSecret = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
    const secretKeys = new Set(Object.keys(values).filter((k) => isSecret?.(k) === true));
    const result = parseStackConfig({ values, secretKeys, env, now });
    if (!result.ok) throw userError(formatProblems(result.problems));
    return result.config;
}
