import { ListObjectsV2Command, S3Client, type _Object } from "@aws-sdk/client-s3";
import { S3Source } from "./schema";
import { ImageSource, SourceContext, SourceImage, sourceError } from "./types";
import { encodeKeyPath } from "./url";

/** AWS settings from stack config (`aws:accessKey`, …), the same the provider presigns with; else the standard chain. */
export interface AwsSettings {
    accessKey?: string;
    secretKey?: string;
    token?: string;
    region?: string;
}

export interface S3SourceContext extends SourceContext {
    aws?: AwsSettings;
}

const DEFAULT_REGION = "us-east-1";

/**
 * An S3 (or S3-compatible) bucket + prefix, listed with ListObjectsV2 (1,000 keys a page, all pages). Public buckets
 * give plain URLs; private ones the stable `s3://bucket/key` the provider presigns at create time.
 */
export function s3Source(source: S3Source, context: S3SourceContext): ImageSource {
    return {
        async *list() {
            const client = new S3Client(clientConfig(source, context.aws));
            try {
                let continuationToken: string | undefined;
                do {
                    const page = await client
                        .send(new ListObjectsV2Command({ Bucket: source.bucket, Prefix: source.prefix || undefined, ContinuationToken: continuationToken }))
                        .catch((error: unknown) => {
                            throw translateS3Error(error, source, context);
                        });
                    for (const object of page.Contents ?? []) {
                        const image = imageFromObject(object, source, context.aws);
                        if (image) yield image;
                    }
                    continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
                } while (continuationToken);
            } finally {
                client.destroy();
            }
        },
    };
}

/** The region the source is listed (and presigned) in. */
export function s3Region(source: S3Source, aws?: AwsSettings): string {
    return source.region ?? aws?.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? DEFAULT_REGION;
}

function clientConfig(source: S3Source, aws: AwsSettings | undefined) {
    return {
        region: s3Region(source, aws),
        ...(source.endpoint ? { endpoint: source.endpoint } : {}),
        ...(source.forcePathStyle !== undefined ? { forcePathStyle: source.forcePathStyle } : {}),
        ...(aws?.accessKey && aws.secretKey
            ? { credentials: { accessKeyId: aws.accessKey, secretAccessKey: aws.secretKey, sessionToken: aws.token } }
            : {}),
        // A wrong region must surface as an error naming sources[i].region, not be followed silently.
        followRegionRedirects: false,
        maxAttempts: 4,
    };
}

function imageFromObject(object: _Object, source: S3Source, aws: AwsSettings | undefined): SourceImage | undefined {
    const key = object.Key;
    // "Folder" placeholder objects are not files anyone requests.
    if (!key || (key.endsWith("/") && !object.Size)) return undefined;
    const publicUrl = isPublic(source) ? s3PublicUrl(source, key, aws) : undefined;
    return {
        key,
        url: publicUrl ?? `s3://${source.bucket}/${encodeKeyPath(key)}`,
        ...(object.Size !== undefined ? { size: object.Size } : {}),
        ...(object.ETag ? { contentHash: object.ETag.replace(/"/g, "") } : {}),
        ...(object.StorageClass ? { storageClass: object.StorageClass } : {}),
        oldUrls: [publicUrl ?? `/${key}`],
    };
}

function isPublic(source: S3Source): boolean {
    return (source.access ?? (source.publicBaseUrl ? "public" : "private")) === "public";
}

/**
 * The plain URL of a public object: `publicBaseUrl/key` when set; otherwise path-style or virtual-hosted on the
 * custom endpoint or on AWS (path-style for bucket names with dots, which break virtual-hosted TLS).
 */
export function s3PublicUrl(source: S3Source, key: string, aws?: AwsSettings): string {
    const path = encodeKeyPath(key);
    if (source.publicBaseUrl) return `${source.publicBaseUrl.replace(/\/+$/, "")}/${path}`;
    const pathStyle = source.forcePathStyle === true || source.bucket.includes(".");
    if (source.endpoint) {
        const endpoint = new URL(source.endpoint);
        const base = endpoint.pathname.replace(/\/+$/, "");
        return pathStyle
            ? `${endpoint.protocol}//${endpoint.host}${base}/${source.bucket}/${path}`
            : `${endpoint.protocol}//${source.bucket}.${endpoint.host}${base}/${path}`;
    }
    const region = s3Region(source, aws);
    return pathStyle
        ? `https://s3.${region}.amazonaws.com/${source.bucket}/${path}`
        : `https://${source.bucket}.s3.${region}.amazonaws.com/${path}`;
}

interface S3ErrorLike {
    name?: string;
    code?: string;
    message?: string;
    Region?: string;
    $metadata?: { httpStatusCode?: number };
    $response?: { headers?: Record<string, string | undefined> };
}

/** Turns an SDK error into a message naming `<configPath>.bucket` / `.region` / `.endpoint` and the fix; never credentials. */
export function translateS3Error(error: unknown, source: S3Source, context: S3SourceContext): Error {
    const e = (error ?? {}) as S3ErrorLike;
    const { configPath } = context;
    const name = e.name ?? e.code ?? "Error";
    const status = e.$metadata?.httpStatusCode;
    const region = s3Region(source, context.aws);
    const where = source.endpoint ? `at ${source.endpoint}` : `in region ${region}`;
    const actualRegion = e.$response?.headers?.["x-amz-bucket-region"] ?? e.Region;
    switch (name) {
        case "NoSuchBucket":
            return sourceError(configPath, "bucket", `bucket "${source.bucket}" does not exist ${where} (check the name${source.endpoint ? ` and ${configPath}.endpoint` : ` and ${configPath}.region`})`);
        case "PermanentRedirect":
        case "AuthorizationHeaderMalformed":
        case "IllegalLocationConstraintException":
            return sourceError(
                configPath,
                "region",
                actualRegion && actualRegion !== region
                    ? `bucket "${source.bucket}" is in region ${actualRegion}, not ${region}: set ${configPath}.region to "${actualRegion}"`
                    : `bucket "${source.bucket}" is not in region ${region}: set ${configPath}.region to the bucket's region`,
            );
        case "InvalidAccessKeyId":
        case "SignatureDoesNotMatch":
        case "InvalidToken":
        case "ExpiredToken":
        case "CredentialsProviderError":
            return sourceError(
                configPath,
                undefined,
                `the AWS credentials were rejected while listing bucket "${source.bucket}" (${name}): set aws:accessKey and aws:secretKey ` +
                    `(secret) in the stack, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE, for an identity that may s3:ListBucket on it`,
            );
        case "AccessDenied":
            return sourceError(configPath, "bucket", `access denied listing bucket "${source.bucket}" ${where}: grant s3:ListBucket on arn:aws:s3:::${source.bucket} to the identity in use`);
    }
    if (status === 301) {
        return sourceError(configPath, "region", `bucket "${source.bucket}" is not in region ${region}: set ${configPath}.region to the bucket's region${actualRegion ? ` ("${actualRegion}")` : ""}`);
    }
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (code && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|ETIMEDOUT)$/.test(code)) {
        return source.endpoint
            ? sourceError(configPath, "endpoint", `cannot reach ${source.endpoint} (${code}): check ${configPath}.endpoint`)
            : sourceError(configPath, "region", `cannot reach S3 in region ${region} (${code}): check ${configPath}.region and the network`);
    }
    return sourceError(configPath, undefined, `listing s3://${source.bucket}/${source.prefix ?? ""} failed: ${name}${status ? ` (HTTP ${status})` : ""}: ${e.message ?? String(error)}`);
}
