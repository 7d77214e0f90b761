import { z } from "zod";
import { SourceError } from "./types";

const httpUrl = (what: string) =>
    z
        .string()
        .refine((value) => isHttpUrl(value), { message: `${what} must be an absolute http(s) URL` })
        .refine((value) => !hasCredentials(value), {
            message: `${what} must not carry user:password (it would be stored in state and logs in plain text)`,
        });

const nonEmpty = (what: string) => z.string({ error: `${what} is required` }).trim().min(1, `${what} must not be empty`);

export const UrlsSourceSchema = z.strictObject({
    kind: z.literal("urls"),
    urls: z.array(httpUrl("each url"), { error: "urls must be a list of http(s) URLs" }).min(1, "urls must list at least one URL"),
});

export const ManifestSourceSchema = z.strictObject({
    kind: z.literal("manifest"),
    path: nonEmpty("path").refine((p) => /\.(csv|ndjson|jsonl)$/i.test(p), {
        message: "path must end in .csv or .ndjson (columns url, id, hash, metadata)",
    }),
});

export const S3SourceSchema = z
    .strictObject({
        kind: z.literal("s3"),
        bucket: nonEmpty("bucket").refine((b) => !/[\s/]/.test(b), {
            message: "bucket is a bucket name, without s3:// or slashes (put the folder in prefix)",
        }),
        prefix: z.string().optional(),
        region: z
            .string()
            .regex(/^[a-z0-9-]+$/, "region looks like eu-west-1 (or auto for R2)")
            .optional(),
        endpoint: httpUrl("endpoint").optional(),
        forcePathStyle: z.boolean().optional(),
        access: z.enum(["public", "private"], { error: 'access is "public" or "private"' }).optional(),
        publicBaseUrl: httpUrl("publicBaseUrl").optional(),
    })
    .refine((s) => !(s.access === "private" && s.publicBaseUrl), {
        message: 'publicBaseUrl only applies to access: "public" buckets (remove it, or set access to "public")',
        path: ["publicBaseUrl"],
    });

export const CloudinarySourceSchema = z.strictObject({
    kind: z.literal("cloudinary"),
    cloudName: nonEmpty("cloudName").regex(/^[A-Za-z0-9_-]+$/, "cloudName is the product environment's cloud name, e.g. demo"),
    apiKey: nonEmpty("apiKey"),
    apiSecret: nonEmpty("apiSecret"),
    prefix: z.string().optional(),
    /** Advanced: the Admin API origin (default https://api.cloudinary.com); tests point it at a loopback server. */
    apiBaseUrl: httpUrl("apiBaseUrl").optional(),
});

export const ImgixSourceSchema = z
    .strictObject({
        kind: z.literal("imgix"),
        domain: nonEmpty("domain").regex(
            /^[A-Za-z0-9.-]+(:\d+)?$/,
            "domain is a host name such as example.imgix.net, without https:// or a path",
        ),
        paths: z.array(nonEmpty("each path")).optional(),
        manifest: nonEmpty("manifest").optional(),
    })
    .refine((s) => (s.paths?.length ?? 0) > 0 || s.manifest !== undefined, {
        message: "imgix has no listing API: give paths (a list) or manifest (a .csv/.ndjson file of paths or URLs)",
        path: ["paths"],
    });

export const LocalSourceSchema = z.strictObject({
    kind: z.literal("local"),
    dir: nonEmpty("dir"),
});

/** One image source, the same shape in stack config (`sourcing-kit:sources[i]`) and in MigratedImageSetArgs.source. */
export const SourceSchema = z.discriminatedUnion("kind", [
    UrlsSourceSchema,
    ManifestSourceSchema,
    S3SourceSchema,
    CloudinarySourceSchema,
    ImgixSourceSchema,
    LocalSourceSchema,
]);

export type Source = z.infer<typeof SourceSchema>;
export type UrlsSource = z.infer<typeof UrlsSourceSchema>;
export type ManifestSource = z.infer<typeof ManifestSourceSchema>;
export type S3Source = z.infer<typeof S3SourceSchema>;
export type CloudinarySource = z.infer<typeof CloudinarySourceSchema>;
export type ImgixSource = z.infer<typeof ImgixSourceSchema>;
export type LocalSource = z.infer<typeof LocalSourceSchema>;

/** Validates one source; every problem is reported at once, each line naming `<configPath>.<field>`. */
export function parseSource(value: unknown, configPath: string): Source {
    const result = SourceSchema.safeParse(value);
    if (result.success) return result.data;
    const lines = formatIssues(result.error.issues, configPath);
    throw new SourceError(lines.join("\n"), configPath);
}

/** Turns zod issues into `<path>: <message>` lines; `sources[1]` style indexes, unknown keys named one by one. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], configPath: string): string[] {
    const lines: string[] = [];
    for (const issue of issues) {
        const at = joinPath(configPath, issue.path);
        if (issue.code === "unrecognized_keys") {
            for (const key of issue.keys) lines.push(`${joinPath(at, [key])}: unknown key (check its spelling)`);
        } else if (issue.code === "invalid_union" && issue.path.at(-1) === "kind") {
            lines.push(`${at}: must be one of urls, manifest, s3, cloudinary, imgix, local`);
        } else {
            lines.push(`${at}: ${issue.message}`);
        }
    }
    return lines;
}

function joinPath(base: string, path: readonly PropertyKey[]): string {
    let out = base;
    for (const part of path) out += typeof part === "number" ? `[${part}]` : `.${String(part)}`;
    return out;
}

function hasCredentials(value: string): boolean {
    try {
        const url = new URL(value);
        return url.username !== "" || url.password !== "";
    } catch {
        return false;
    }
}

function isHttpUrl(value: string): boolean {
    try {
        const url = new URL(value);
        return url.protocol === "http:" || url.protocol === "https:";
    } catch {
        return false;
    }
}
