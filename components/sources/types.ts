/** One object a source lists: what it is, where its bytes are, and the URLs people request it by today. */
export interface SourceImage {
    /** Stable identity within the source (S3 key, relative path, URL path, public ID + format); the custom ID derives from it. */
    key: string;
    /** http(s) URL Cloudflare fetches, or `s3://bucket/key` that the provider presigns. */
    url?: string;
    /** Local file the provider streams up (exactly one of url / filePath). */
    filePath?: string;
    size?: number;
    /** ETag, sha256 or version of the bytes, when the source knows it. */
    contentHash?: string;
    contentType?: string;
    /** S3 storage class (GLACIER / DEEP_ARCHIVE objects cannot be fetched). */
    storageClass?: string;
    /** Explicit custom ID (manifests); otherwise derived from `key`. */
    id?: string;
    metadata?: Record<string, unknown>;
    /** URLs or paths that should redirect to the migrated image. */
    oldUrls: string[];
}

export interface ImageSource {
    list(): AsyncIterable<SourceImage>;
}

export interface SourceContext {
    /** Where the source sits in stack config, e.g. `sourcing-kit:sources[1]`; errors name `<configPath>.<field>`. */
    configPath: string;
}

/** A source that cannot be read as configured; the message names the config key and the fix. */
export class SourceError extends Error {
    constructor(
        message: string,
        readonly configKey: string,
    ) {
        super(message);
        this.name = "SourceError";
    }
}

/** Builds a SourceError whose message starts with the config key it blames. */
export function sourceError(configPath: string, field: string | undefined, message: string): SourceError {
    const key = field ? `${configPath}.${field}` : configPath;
    return new SourceError(`${key}: ${message}`, key);
}
