/** Reserved metadata key where the provider records the source hash, so adoption can tell "same bytes" apart. */
export const SOURCE_HASH_KEY = "_skh";

/** Cloudflare Images stores at most this many bytes of metadata per image (JSON-encoded). */
export const METADATA_MAX_BYTES = 1024;

export type MetadataValue = string | number | boolean;

/** The metadata sent to Cloudflare: the user's keys plus the reserved source-hash key. */
export function packMetadata(metadata: Record<string, MetadataValue> | undefined, sourceHash: string): Record<string, unknown> {
    return { ...(metadata ?? {}), [SOURCE_HASH_KEY]: sourceHash };
}

/** Splits stored metadata back into the user's keys and the recorded source hash (absent on foreign images). */
export function unpackMetadata(meta: Record<string, unknown> | null | undefined): {
    metadata: Record<string, unknown>;
    sourceHash?: string;
} {
    const { [SOURCE_HASH_KEY]: hash, ...metadata } = meta ?? {};
    return typeof hash === "string" ? { metadata, sourceHash: hash } : { metadata };
}

/** Size in bytes of the metadata as Cloudflare counts it (its JSON text). */
export function metadataBytes(meta: Record<string, unknown>): number {
    return new TextEncoder().encode(JSON.stringify(meta)).length;
}
