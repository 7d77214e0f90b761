import { z } from "zod";
import { METADATA_MAX_BYTES, MetadataValue, OWNER_KEY, RESERVED_METADATA_KEYS, metadataBytes, packMetadata } from "./source-metadata";

/** The value the engine sends for an input that is not known yet (e.g. during `pulumi preview`). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export const DEFAULT_API_BASE_URL = "https://api.cloudflare.com/client/v4";

export type OnConflict = "adopt" | "overwrite" | "fail";

export interface S3Options {
    region?: string;
    endpoint?: string;
    forcePathStyle?: boolean;
}

/** The resolved (plain) inputs of one CloudflareImage, as the provider receives them. */
export interface ImageInputs {
    accountId: string;
    imageId: string;
    url?: string;
    filePath?: string;
    sourceHash: string;
    metadata?: Record<string, MetadataValue>;
    requireSignedURLs?: boolean;
    apiToken?: string;
    apiBaseUrl?: string;
    onConflict?: OnConflict;
    s3?: S3Options;
    /** "<stack>/<resource name>", recorded in the image's metadata: delete spares images another resource owns. */
    owner?: string;
}

export interface CheckFailure {
    property: string;
    reason: string;
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
// Characters that would break the delivery URL path or the state's readability.
const ID_FORBIDDEN = /[\u0000-\u0020\u007f?#\\]/;
const PRESIGN_PARAMS = ["x-amz-signature", "x-amz-credential", "signature", "x-goog-signature", "sig"];
const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

const FIX = {
    accountId: "set it to your Cloudflare account ID (sourcing-kit:accountId)",
    imageId: "give the image a custom ID (the component derives one from the source key)",
    sourceHash: "pass the ETag, sha256 or version of the source bytes",
};

const nonEmpty = (what: string, fix: string) =>
    z.string({ error: `${what} must be a string: ${fix}` }).min(1, { error: `${what} is empty: ${fix}` });

/** A URL as error messages may show it: userinfo (credentials) is never echoed. */
function shown(text: string): string {
    return text.replace(/\/\/[^/@]*@/, "//***@");
}

function parseUrl(text: string): URL | undefined {
    try {
        return new URL(text);
    } catch {
        return undefined;
    }
}

const accountId = nonEmpty("accountId", FIX.accountId).regex(
    /^[A-Za-z0-9_-]{1,64}$/,
    { error: "accountId must be a Cloudflare account ID (32 hex characters, from the dashboard's Overview page)" },
);

const imageId = nonEmpty("imageId", FIX.imageId)
    .max(1024, { error: "imageId is longer than 1024 characters: Cloudflare rejects it; shorten the key or the idPrefix" })
    .refine((id) => !id.startsWith("/") && !id.endsWith("/"), {
        error: "imageId must not start or end with '/': trim the slashes from the custom ID",
    })
    .refine((id) => !UUID.test(id), {
        error: "imageId must not be a UUID (Cloudflare reserves those for its own IDs): add a prefix or an extension",
    })
    .refine((id) => !ID_FORBIDDEN.test(id), {
        error: "imageId contains whitespace, a control character, '?', '#' or '\\': replace them (e.g. with '-')",
    })
    .refine((id) => !id.split("/").includes(""), { error: "imageId has an empty path segment ('//'): collapse the slashes" });

const url = z.string({ error: "url must be a string: an http(s):// URL or s3://bucket/key" }).superRefine((text, ctx) => {
    const parsed = parseUrl(text);
    if (!parsed) {
        ctx.addIssue({ code: "custom", message: `url "${shown(text)}" is not a valid URL: give an absolute http(s):// or s3:// URL` });
        return;
    }
    if (!["http:", "https:", "s3:"].includes(parsed.protocol)) {
        ctx.addIssue({
            code: "custom",
            message: `url scheme "${parsed.protocol}" is not supported: use http://, https:// or s3://bucket/key`,
        });
        return;
    }
    if (parsed.username || parsed.password) {
        ctx.addIssue({
            code: "custom",
            message: "url contains credentials, which would be stored in state in plain text: use a private s3:// source or filePath",
        });
    }
    const presigned = [...parsed.searchParams.keys()].find((k) => PRESIGN_PARAMS.includes(k.toLowerCase()));
    if (presigned) {
        ctx.addIssue({
            code: "custom",
            message: `url carries a signature (${presigned}) that expires and would be stored in state: use the stable s3://bucket/key instead`,
        });
    }
    if (parsed.protocol === "s3:") {
        if (!S3_BUCKET.test(parsed.hostname)) {
            ctx.addIssue({ code: "custom", message: `url "${shown(text)}": "${parsed.hostname}" is not a valid S3 bucket name (s3://bucket/key)` });
        }
        if (parsed.pathname.length <= 1) {
            ctx.addIssue({ code: "custom", message: `url "${shown(text)}" names no object key: use s3://bucket/path/to/image.jpg` });
        }
    }
});

const filePath = nonEmpty("filePath", "give the path of a local image file (absolute, or relative to the project)");

const sourceHash = nonEmpty("sourceHash", FIX.sourceHash)
    .max(128, { error: "sourceHash is longer than 128 characters: pass a digest (e.g. hex sha256), not the content" })
    .refine((h) => !/[\u0000-\u001f\u007f]/.test(h), { error: "sourceHash contains control characters: pass a hex or base64 digest" });

const metadataValue = z.union([z.string(), z.number(), z.boolean()]);

const requireSignedURLs = z.boolean({ error: "requireSignedURLs must be true or false" });

const apiToken = nonEmpty("apiToken", "pass a Cloudflare API token with Images Write, or leave it unset to use cloudflare:apiToken")
    .refine((t) => !/\s/.test(t), { error: "apiToken contains whitespace: copy the token without spaces or newlines" });

const apiBaseUrl = z.string({ error: "apiBaseUrl must be a string URL" }).superRefine((text, ctx) => {
    const parsed = parseUrl(text);
    if (!parsed || !["http:", "https:"].includes(parsed.protocol)) {
        ctx.addIssue({ code: "custom", message: `apiBaseUrl "${shown(text)}" is not an http(s) URL: use ${DEFAULT_API_BASE_URL} or leave it unset` });
        return;
    }
    if (parsed.username || parsed.password || parsed.search || parsed.hash) {
        ctx.addIssue({ code: "custom", message: "apiBaseUrl must not contain credentials, a query or a fragment: give only the base, e.g. " + DEFAULT_API_BASE_URL });
    }
});

const onConflict = z.enum(["adopt", "overwrite", "fail"], {
    error: "onConflict must be one of adopt, overwrite or fail",
});

const s3 = z
    .object(
        {
            region: z.string().regex(/^[a-z0-9-]{2,32}$/, { error: "s3.region must be a region name such as eu-west-1" }).optional(),
            endpoint: z
                .string()
                .refine((e) => ["http:", "https:"].includes(parseUrl(e)?.protocol ?? ""), {
                    error: "s3.endpoint must be an http(s) URL of an S3-compatible service",
                })
                .optional(),
            forcePathStyle: z.boolean({ error: "s3.forcePathStyle must be true or false" }).optional(),
        },
        {
            error: (issue) =>
                issue.code === "unrecognized_keys"
                    ? `s3 has unknown keys (${issue.keys.join(", ")}): s3 accepts region, endpoint and forcePathStyle`
                    : "s3 must be an object { region?, endpoint?, forcePathStyle? }",
        },
    )
    .strict();

export const owner = z.string({ error: "owner must be a string (\"<stack>/<resource name>\", set by the resource class)" })
    .min(1, { error: "owner is empty: leave it to the resource class" })
    .max(256, { error: "owner is longer than 256 characters: shorten the resource name" });

const PROPERTY_SCHEMAS: Record<keyof ImageInputs, z.ZodType> = {
    accountId,
    imageId,
    url,
    filePath,
    sourceHash,
    metadata: z.unknown(), // checked key by key below, for property paths that name the bad key
    requireSignedURLs,
    apiToken,
    apiBaseUrl,
    onConflict,
    s3,
    owner,
};
const REQUIRED = Object.keys(FIX) as (keyof typeof FIX)[];
const PROPERTIES = Object.keys(PROPERTY_SCHEMAS);

function isUnknown(value: unknown): boolean {
    if (value === UNKNOWN) return true;
    if (Array.isArray(value)) return value.some(isUnknown);
    if (value && typeof value === "object") return Object.values(value).some(isUnknown);
    return false;
}

function checkMetadata(value: unknown, failures: CheckFailure[]): void {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        failures.push({ property: "metadata", reason: "metadata must be an object of string, number or boolean values" });
        return;
    }
    for (const [key, v] of Object.entries(value)) {
        if (RESERVED_METADATA_KEYS.includes(key)) {
            const what = key === OWNER_KEY ? "the owning resource" : "the source hash: rename it (set sourceHash instead)";
            failures.push({
                property: `metadata.${key}`,
                reason: `metadata key "${key}" is reserved for ${what}${key === OWNER_KEY ? ": rename it" : ""}`,
            });
        } else if (!metadataValue.safeParse(v).success) {
            failures.push({
                property: `metadata.${key}`,
                reason: `metadata.${key} must be a string, number or boolean: flatten nested values or JSON-encode them into a string`,
            });
        }
    }
}

/**
 * Validates one image's inputs without any I/O. Unknown values (preview) are skipped; every problem becomes a
 * CheckFailure naming the property and the fix.
 */
export function checkImageInputs(news: Record<string, unknown>, resource = "CloudflareImage"): CheckFailure[] {
    const failures: CheckFailure[] = [];
    const known = (key: string) => news[key] !== undefined && news[key] !== null && !isUnknown(news[key]);
    for (const key of Object.keys(news)) {
        if (key === "__provider" || news[key] === undefined) continue;
        if (!PROPERTIES.includes(key)) {
            failures.push({ property: key, reason: `unknown property "${key}": ${resource} accepts ${PROPERTIES.join(", ")}` });
        }
    }
    for (const key of REQUIRED) {
        if (news[key] === undefined || news[key] === null) {
            failures.push({ property: key, reason: `${key} is required: ${FIX[key]}` });
        }
    }
    for (const key of PROPERTIES as (keyof ImageInputs)[]) {
        if (!known(key)) continue;
        if (key === "metadata") {
            checkMetadata(news.metadata, failures);
            continue;
        }
        const result = PROPERTY_SCHEMAS[key].safeParse(news[key]);
        if (!result.success) {
            for (const issue of result.error.issues) {
                failures.push({ property: [key, ...issue.path.map(String)].join("."), reason: issue.message });
            }
        }
    }

    const hasUrl = news.url !== undefined && news.url !== null;
    const hasFile = news.filePath !== undefined && news.filePath !== null;
    if (hasUrl && hasFile) {
        failures.push({ property: "url", reason: "give exactly one of url and filePath, not both: remove one of them" });
    } else if (!hasUrl && !hasFile) {
        failures.push({ property: "url", reason: "give exactly one of url (Cloudflare fetches it) or filePath (the provider uploads it)" });
    }
    if (news.requireSignedURLs === true) {
        failures.push({
            property: "requireSignedURLs",
            reason: "requireSignedURLs cannot be true: Cloudflare does not allow signed URLs for images with a custom ID; set it to false",
        });
    }
    if (known("s3") && known("url") && !String(news.url).startsWith("s3://")) {
        failures.push({ property: "s3", reason: "s3 options apply only to s3://bucket/key urls: remove s3 or use an s3:// url" });
    }
    if (known("metadata") && known("sourceHash") && !failures.some((f) => f.property.startsWith("metadata"))) {
        const owner = typeof news.owner === "string" ? news.owner : undefined;
        const bytes = metadataBytes(packMetadata(news.metadata as Record<string, MetadataValue>, String(news.sourceHash), owner));
        if (bytes > METADATA_MAX_BYTES) {
            failures.push({
                property: "metadata",
                reason: `metadata is ${bytes} bytes with the source hash; Cloudflare allows ${METADATA_MAX_BYTES}: drop or shorten keys`,
            });
        }
    }
    return failures;
}

/** Only the input keys of a property bag (stored outputs also hold deliveryUrl, variants, …). */
export function pickInputs(props: Record<string, unknown>): Record<string, unknown> {
    return Object.fromEntries(PROPERTIES.filter((k) => props[k] !== undefined && props[k] !== null).map((k) => [k, props[k]]));
}

/** The inputs as the provider's create/update use them; throws a readable error when check() would have failed. */
export function parseImageInputs(props: Record<string, unknown>): ImageInputs {
    const failures = checkImageInputs(props);
    if (failures.length > 0) {
        throw new Error(`invalid CloudflareImage inputs: ${failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
    }
    const inputs: Record<string, unknown> = {};
    for (const key of PROPERTIES) {
        if (props[key] !== undefined && props[key] !== null) inputs[key] = props[key];
    }
    return inputs as unknown as ImageInputs;
}
