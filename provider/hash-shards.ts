import { createHash } from "crypto";

/** 32 bits of sha256(key): the key's place in the shard trie (most significant bit first). */
export function hash32(key: string): number {
    return createHash("sha256").update(key).digest().readUInt32BE(0);
}

/**
 * Pure: splits keys into shards of at most `maxPerShard` by hash prefix (extendible hashing). A shard splits in two
 * only when it overflows, so adding or removing keys never moves keys between the other shards: redirect rows and
 * image batches keep their resources when the library grows. Returns prefix ("" when everything fits in one
 * shard) -> keys in sorted order, sorted by prefix; the empty set gives one empty shard "".
 */
export function shardByHash(keys: readonly string[], maxPerShard: number): Map<string, string[]> {
    const sorted = [...keys].sort();
    const hashes = new Uint32Array(sorted.length);
    sorted.forEach((key, i) => { hashes[i] = hash32(key); });
    const shards = new Map<string, string[]>();
    // members: indexes into sorted, kept in key order; depth: bits of the prefix consumed so far.
    const split = (prefix: string, members: number[]): void => {
        const depth = prefix.length;
        if (members.length <= maxPerShard || depth === 32) {
            if (members.length > 0 || prefix === "") shards.set(prefix, members.map((i) => sorted[i]!));
            return;
        }
        const bit = 31 - depth;
        const zeros: number[] = [];
        const ones: number[] = [];
        for (const i of members) ((hashes[i]! >>> bit) & 1 ? ones : zeros).push(i);
        split(`${prefix}0`, zeros);
        split(`${prefix}1`, ones);
    };
    split("", sorted.map((_, i) => i));
    return new Map([...shards.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A readable, stable resource-name suffix for a shard prefix: "all", or "b" and the prefix's bits. */
export function shardLabel(prefix: string): string {
    return prefix === "" ? "all" : `b${prefix}`;
}
