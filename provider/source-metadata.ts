/** Reserved metadata key where the provider records the source hash, so adoption can tell "same bytes" apart. */
export const SOURCE_HASH_KEY = "_skh";
/** Reserved metadata key naming the resource that owns the image ("<stack>/<resource name>"): delete spares others'. */
export const OWNER_KEY = "_sko";
export const RESERVED_METADATA_KEYS = [SOURCE_HASH_KEY, OWNER_KEY];

/** Cloudflare Images stores at most this many bytes of metadata per image (JSON-encoded). */
export const METADATA_MAX_BYTES = 1024;

export type MetadataValue = string | number | boolean;

/** The metadata sent to Cloudflare: the user's keys plus the reserved source-hash (and owner) keys. */
export function packMetadata(metadata: Record<string, MetadataValue> | undefined, sourceHash: string, owner?: string): Record<string, unknown> {
    return { ...(metadata ?? {}), [SOURCE_HASH_KEY]: sourceHash, ...(owner === undefined ? {} : { [OWNER_KEY]: owner }) };
}

/** Splits stored metadata back into the user's keys, the recorded source hash and owner (absent on foreign images). */
export function unpackMetadata(meta: Record<string, unknown> | null | undefined): {
    metadata: Record<string, unknown>;
    sourceHash?: string;
    owner?: string;
} {
    const { [SOURCE_HASH_KEY]: hash, [OWNER_KEY]: owner, ...metadata } = meta ?? {};
    return {
        metadata,
        ...(typeof hash === "string" ? { sourceHash: hash } : {}),
        ...(typeof owner === "string" ? { owner } : {}),
    };
}

/** Size in bytes of the metadata as Cloudflare counts it (its JSON text). */
export function metadataBytes(meta: Record<string, unknown>): number {
    return new TextEncoder().encode(JSON.stringify(meta)).length;
}
