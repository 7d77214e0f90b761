import picomatch from "picomatch";
import { MAX_IMAGE_BYTES } from "../provider/image-format";
import { deriveImageId } from "./image-id";
import { inPartition, type Partition } from "./partition";
import { SourceError, SourceImage } from "./sources/types";
import { normaliseUrl, urlIdentity } from "./sources/url";

/** Why a listed object does not become an image. */
export type SkipReason = "not-an-image" | "too-large" | "unsupported-format" | "empty" | "archived" | "unaddressable-key";
export const SKIP_REASONS: readonly SkipReason[] = ["not-an-image", "too-large", "unsupported-format", "empty", "archived", "unaddressable-key"];

export { MAX_IMAGE_BYTES };

const SUPPORTED_EXTENSIONS = new Set(["jpg", "jpeg", "jpe", "jfif", "pjpeg", "pjp", "png", "apng", "gif", "webp", "svg", "heic", "heif"]);
// Images Cloudflare does not take as input (AVIF only on Enterprise plans).
const UNSUPPORTED_EXTENSIONS = new Set([
    "tif", "tiff", "bmp", "dib", "avif", "psd", "psb", "ico", "cur", "jxl", "jp2", "j2k", "jpf", "jpx", "jxr", "tga",
    "exr", "hdr", "dng", "cr2", "cr3", "nef", "arw", "orf", "rw2", "raf", "raw", "eps", "ai", "xcf", "pcx", "ppm", "pgm",
    "pbm", "pnm",
]);
const SUPPORTED_TYPES = new Set([
    "image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/apng", "image/gif", "image/webp", "image/svg+xml",
    "image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence",
]);
const GENERIC_TYPES = new Set(["application/octet-stream", "binary/octet-stream"]);
// Glacier Flexible Retrieval and Deep Archive need a restore before a GET; Glacier Instant Retrieval does not.
const ARCHIVED_STORAGE_CLASSES = new Set(["GLACIER", "DEEP_ARCHIVE"]);
const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/;

/**
 * Why `image` is skipped, or undefined when it should be migrated. A specific content type decides the format;
 * otherwise the extension does; an object with neither is kept (Cloudflare checks the bytes on upload).
 */
export function skipReason(image: Pick<SourceImage, "key" | "url" | "contentType" | "size" | "storageClass">): SkipReason | undefined {
    // "a/./b" or "a/../b" cannot be fetched by URL: every URL parser (Cloudflare's fetcher too) resolves the segment.
    if (image.url !== undefined && DOT_SEGMENT.test(image.key)) return "unaddressable-key";
    const format = classifyFormat(image.key, image.contentType);
    if (format === "not-an-image") return "not-an-image";
    if (format === "unsupported") return "unsupported-format";
    if (image.storageClass !== undefined && ARCHIVED_STORAGE_CLASSES.has(image.storageClass.toUpperCase())) return "archived";
    if (image.size === 0) return "empty";
    if (image.size !== undefined && image.size > MAX_IMAGE_BYTES) return "too-large";
    return undefined;
}

type Format = "supported" | "unsupported" | "not-an-image" | "unknown";

function classifyFormat(key: string, contentType: string | undefined): Format {
    const type = contentType?.split(";")[0].trim().toLowerCase();
    if (type && !GENERIC_TYPES.has(type)) {
        if (SUPPORTED_TYPES.has(type)) return "supported";
        return type.startsWith("image/") ? "unsupported" : "not-an-image";
    }
    const extension = extensionOf(key);
    if (extension === undefined) return type ? "not-an-image" : "unknown";
    if (SUPPORTED_EXTENSIONS.has(extension)) return "supported";
    return UNSUPPORTED_EXTENSIONS.has(extension) ? "unsupported" : "not-an-image";
}

/** Lower-case extension of the key's last path segment (query ignored); a dotfile's whole name counts as one. */
export function extensionOf(key: string): string | undefined {
    const path = key.split("?")[0];
    const name = path.slice(path.lastIndexOf("/") + 1);
    const dot = name.lastIndexOf(".");
    if (dot < 0 || dot === name.length - 1) return undefined;
    return name.slice(dot + 1).toLowerCase();
}

/** One image the set declares. */
export interface PlannedImage {
    imageId: string;
    key: string;
    url?: string;
    filePath?: string;
    sourceHash: string;
    metadata?: Record<string, string | number | boolean>;
    oldUrls: string[];
}

export interface ImageMapping {
    imageId: string;
    deliveryUrl: string;
}

export interface ImagePlan {
    /** In stable order (by source key). */
    images: PlannedImage[];
    listed: number;
    /** Left out by include/exclude globs (not a skip: the user asked for it). */
    excluded: number;
    /** Valid images left out by `sample`. */
    sampledOut: number;
    skipped: Partial<Record<SkipReason, number>>;
    /** A few keys per reason, for the log. */
    skipExamples: Partial<Record<SkipReason, string[]>>;
    duplicates: number;
    /** Old URL or path -> image, for every old URL of every planned image. */
    mapping: Record<string, ImageMapping>;
    /**
     * With a partition: `images`, `mapping` and the counts above are this partition's (skips and excluded objects
     * by the custom ID they would have had, duplicates by the image they merged into, so the stacks' counts add up
     * to the library's); `allPlanned` and `allMapping` are the whole plan's, the same in every partition's stack.
     */
    partition?: Partition & { allPlanned: number; allMapping: Record<string, ImageMapping> };
}

export interface PlanOptions {
    configPath: string;
    idPrefix?: string;
    include?: string[];
    exclude?: string[];
    sample?: number;
    /** Set-wide metadata; per-image metadata (manifests) wins on the same key. */
    metadata?: Record<string, string>;
    deliveryUrl: (imageId: string) => string;
    /** Keep only this part of the plan (`sourcing-kit:partition`), chosen by custom ID after everything else. */
    partition?: Partition;
}

const MAX_EXAMPLES = 5;

/** Two source objects that would land on one custom ID. */
export class ImageIdCollisionError extends SourceError {
    constructor(configPath: string, imageId: string, first: string, second: string) {
        super(
            `${configPath}: ${first} and ${second} both map to image id "${imageId}" ` +
                `(rename one of them, give explicit ids in a manifest, or exclude one with ${configPath} exclude globs)`,
            configPath,
        );
        this.name = "ImageIdCollisionError";
    }
}

/**
 * Pure planning: filter by globs, skip what Cloudflare cannot take, merge duplicates (same content hash or same
 * normalised URL; the first key in sorted order wins and keeps every old URL), sample, derive custom IDs, detect
 * collisions and build the old-URL mapping. Feed it with `add`, then call `finish` once.
 */
export class ImagePlanner {
    private readonly candidates: SourceImage[] = [];
    private readonly skipped: Partial<Record<SkipReason, number>> = {};
    private readonly skipExamples: Partial<Record<SkipReason, string[]>> = {};
    private readonly included: (key: string) => boolean;
    private listed = 0;
    private excluded = 0;

    constructor(private readonly options: PlanOptions) {
        const include = options.include?.length ? picomatch(options.include, { dot: true }) : undefined;
        const exclude = options.exclude?.length ? picomatch(options.exclude, { dot: true }) : undefined;
        this.included = (key) => (!include || include(key)) && !(exclude && exclude(key));
    }

    add(image: SourceImage): void {
        this.listed++;
        if (!this.included(image.key.split("?")[0])) {
            if (this.mine(image)) this.excluded++;
            return;
        }
        const reason = skipReason(image);
        if (reason) {
            if (!this.mine(image)) return;
            this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
            const examples = (this.skipExamples[reason] ??= []);
            if (examples.length < MAX_EXAMPLES) examples.push(image.key);
            return;
        }
        this.candidates.push(image);
    }

    /** Whether an object left out of the plan counts in this partition: by the custom ID it would have had. */
    private mine(image: SourceImage): boolean {
        const { partition, idPrefix } = this.options;
        return partition === undefined || partition.count === 1 || inPartition(deriveImageId(image.id ?? image.key, idPrefix), partition);
    }

    finish(): ImagePlan {
        const { configPath, sample, deliveryUrl, partition } = this.options;
        const ordered = this.candidates.sort(compareImages);
        const images: PlannedImage[] = [];
        const byIdentity = new Map<string, PlannedImage>();
        const duplicatesOf = new Map<PlannedImage, number>();
        for (const candidate of ordered) {
            const identities = identitiesOf(candidate);
            const existing = identities.map((identity) => byIdentity.get(identity)).find((found) => found !== undefined);
            if (existing) {
                duplicatesOf.set(existing, (duplicatesOf.get(existing) ?? 0) + 1);
                for (const oldUrl of candidate.oldUrls) if (!existing.oldUrls.includes(oldUrl)) existing.oldUrls.push(oldUrl);
                for (const identity of identities) if (!byIdentity.has(identity)) byIdentity.set(identity, existing);
                continue;
            }
            const planned = this.toPlanned(candidate);
            images.push(planned);
            for (const identity of identities) byIdentity.set(identity, planned);
        }
        this.candidates.length = 0;

        // Collisions are checked over the whole listing, so a sampled trial run already reports them.
        const owners = new Map<string, PlannedImage>();
        for (const image of images) {
            const owner = owners.get(image.imageId);
            if (owner) throw new ImageIdCollisionError(configPath, image.imageId, describe(owner), describe(image));
            owners.set(image.imageId, image);
        }
        // Sample, then partition: the stacks of a partitioned library share one sample, each keeping its slice.
        const sampled = sample !== undefined ? images.slice(0, sample) : images;
        const split = partition !== undefined && partition.count > 1;
        const kept = split ? sampled.filter((image) => inPartition(image.imageId, partition)) : sampled;
        const mappingOf = (planned: PlannedImage[]): Record<string, ImageMapping> => {
            const mapping: Record<string, ImageMapping> = {};
            for (const image of planned) {
                const target = { imageId: image.imageId, deliveryUrl: deliveryUrl(image.imageId) };
                for (const oldUrl of image.oldUrls) if (!Object.hasOwn(mapping, oldUrl)) mapping[oldUrl] = target;
            }
            return mapping;
        };
        const sampledOut = images.filter((image, i) => i >= sampled.length && (!split || inPartition(image.imageId, partition))).length;
        let duplicates = 0;
        for (const [image, n] of duplicatesOf) if (!split || inPartition(image.imageId, partition)) duplicates += n;
        return {
            images: kept,
            listed: this.listed,
            excluded: this.excluded,
            sampledOut,
            skipped: this.skipped,
            skipExamples: this.skipExamples,
            duplicates,
            mapping: mappingOf(kept),
            ...(split ? { partition: { ...partition, allPlanned: sampled.length, allMapping: mappingOf(sampled) } } : {}),
        };
    }

    private toPlanned(image: SourceImage): PlannedImage {
        const { configPath, idPrefix, metadata } = this.options;
        const sourceHash = image.contentHash ?? (image.url && /^https?:/i.test(image.url) ? urlIdentity(image.url) : undefined);
        if (sourceHash === undefined) {
            throw new SourceError(`${configPath}: "${image.key}" has neither a content hash nor an http(s) URL to identify it`, configPath);
        }
        const merged = { ...metadata, ...primitiveMetadata(image.metadata) };
        return {
            imageId: deriveImageId(image.id ?? image.key, idPrefix),
            key: image.key,
            ...(image.url !== undefined ? { url: image.url } : {}),
            ...(image.filePath !== undefined ? { filePath: image.filePath } : {}),
            sourceHash,
            ...(Object.keys(merged).length > 0 ? { metadata: merged } : {}),
            oldUrls: [...image.oldUrls],
        };
    }
}

/** Plans a whole listing; see ImagePlanner. */
export async function planImages(images: AsyncIterable<SourceImage> | Iterable<SourceImage>, options: PlanOptions): Promise<ImagePlan> {
    const planner = new ImagePlanner(options);
    for await (const image of images) planner.add(image);
    return planner.finish();
}

function compareImages(a: SourceImage, b: SourceImage): number {
    return compare(a.key, b.key) || compare(a.url ?? a.filePath ?? "", b.url ?? b.filePath ?? "");
}

// Code-unit order, not localeCompare: the plan must not depend on the machine's locale.
function compare(a: string, b: string): number {
    return a < b ? -1 : a > b ? 1 : 0;
}

function identitiesOf(image: SourceImage): string[] {
    const identities: string[] = [];
    if (image.contentHash) identities.push(`hash:${image.contentHash}`);
    if (image.url) identities.push(`url:${/^https?:/i.test(image.url) ? normaliseUrl(image.url) : image.url}`);
    return identities;
}

function describe(image: PlannedImage): string {
    const where = image.url ?? image.filePath;
    return where && where !== image.key ? `"${image.key}" (${where})` : `"${image.key}"`;
}

function primitiveMetadata(metadata: Record<string, unknown> | undefined): Record<string, string | number | boolean> {
    const out: Record<string, string | number | boolean> = {};
    if (!metadata) return out;
    for (const [key, value] of Object.entries(metadata)) {
        if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") out[key] = value;
        else if (value !== null && value !== undefined) out[key] = JSON.stringify(value);
    }
    return out;
}
