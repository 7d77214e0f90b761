import { createHash } from "crypto";

/** `sourcing-kit:partition`: this stack migrates part `index` (0-based) of `count` of every source. */
export interface Partition {
    index: number;
    count: number;
}

export const MAX_PARTITIONS = 1024;

const MASK64 = (1n << 64n) - 1n;
const JUMP_MULTIPLIER = 2862933555777941757n;

/**
 * The partition (0..count-1) of a custom ID: jump consistent hash (Lamping and Veach, 2014) keyed by the first
 * 64 bits of sha256(imageId). A function of the ID and the count only, so adding or removing images never moves
 * another one; going from n to n+1 partitions moves only about 1/(n+1) of the images (all into the new one).
 */
export function partitionOf(imageId: string, count: number): number {
    if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) {
        throw new RangeError(`partition count ${count}: must be a whole number from 1 to ${MAX_PARTITIONS}`);
    }
    let key = createHash("sha256").update(imageId).digest().readBigUInt64BE(0);
    let bucket = -1;
    let next = 0;
    while (next < count) {
        bucket = next;
        key = (key * JUMP_MULTIPLIER + 1n) & MASK64;
        next = Math.floor((bucket + 1) * (2 ** 31 / (Number(key >> 33n) + 1)));
    }
    return bucket;
}

/** True when the image belongs to `partition` (always, without one). */
export function inPartition(imageId: string, partition: Partition | undefined): boolean {
    return partition === undefined || partition.count === 1 || partitionOf(imageId, partition.count) === partition.index;
}

/** `partition 3 of 8`, for log lines. */
export function describePartition(partition: Partition): string {
    return `partition ${partition.index} of ${partition.count}`;
}
