import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { S3Options } from "./image-inputs";
import type { AwsSettings } from "./provider-config";

/** Long enough for Cloudflare to fetch the object on a slow retry, short enough to be useless if it leaks. */
export const PRESIGN_EXPIRES_SECONDS = 3600;

/** Pure: bucket and key of `s3://bucket/path/to/key` (the key is URL-decoded). */
export function parseS3Url(url: string): { bucket: string; key: string } {
    const parsed = new URL(url);
    if (parsed.protocol !== "s3:" || !parsed.hostname || parsed.pathname.length <= 1) {
        throw new Error(`url "${url}" is not s3://bucket/key`);
    }
    return { bucket: parsed.hostname, key: decodeURIComponent(parsed.pathname.slice(1)) };
}

/**
 * A GET URL for a private S3 (or S3-compatible) object, signed now for Cloudflare to fetch once. Credentials come
 * from `aws:accessKey`/`aws:secretKey` in the stack config, else the standard AWS chain; neither the credentials nor
 * the signed URL are ever returned as outputs.
 */
export async function presignS3Url(url: string, options: S3Options | undefined, aws: AwsSettings, env: NodeJS.ProcessEnv = process.env): Promise<string> {
    const { bucket, key } = parseS3Url(url);
    const client = clientFor(options, aws, env);
    try {
        return await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: PRESIGN_EXPIRES_SECONDS });
    } catch (e) {
        throw new Error(`url ${url}: cannot presign the S3 object (${(e as Error).message}); set aws:accessKey and ` +
            `aws:secretKey (secret) or AWS credentials in the environment, and s3.region`);
    }
}

// One client per endpoint and credentials for the host process: each new client would resolve the AWS credential
// chain again (files, SSO, instance metadata), once per image.
const clients = new Map<string, S3Client>();

function clientFor(options: S3Options | undefined, aws: AwsSettings, env: NodeJS.ProcessEnv): S3Client {
    const region = options?.region ?? aws.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1";
    const cacheKey = JSON.stringify([region, options?.endpoint, options?.forcePathStyle, aws.accessKey, aws.secretKey, aws.token]);
    let client = clients.get(cacheKey);
    if (!client) {
        const credentials = aws.accessKey && aws.secretKey
            ? { accessKeyId: aws.accessKey, secretAccessKey: aws.secretKey, sessionToken: aws.token }
            : undefined;
        client = new S3Client({ region, endpoint: options?.endpoint, forcePathStyle: options?.forcePathStyle, credentials });
        clients.set(cacheKey, client);
    }
    return client;
}
