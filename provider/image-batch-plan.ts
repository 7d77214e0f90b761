import { createHash } from "crypto";
import { canonical } from "./image-diff";
import { CheckFailure, checkImageInputs, ImageInputs, OnConflict, S3Options, UNKNOWN } from "./image-inputs";
import type { StoredImageView } from "./image-outputs";
import { MetadataValue, unpackMetadata } from "./source-metadata";

// CloudflareImageBatch's pure parts: input checks, the per-image inputs, the compact stored outputs, the plan.

/** One image of a batch, keyed by its custom ID in `images`. */
export interface BatchImageInput {
    url?: string;
    filePath?: string;
    sourceHash: string;
    metadata?: Record<string, MetadataValue>;
    requireSignedURLs?: boolean;
}

export interface BatchInputs {
    accountId: string;
    owner: string;
    images: Record<string, BatchImageInput>;
    apiToken?: string;
    apiBaseUrl?: string;
    onConflict?: OnConflict;
    s3?: S3Options;
    /** Uploads in flight at once inside the batch (the process-wide limiter still paces them); default 32. */
    concurrency?: number;
}

/** What state keeps of one image: enough to diff, retry, refresh and delete; nothing derivable. */
export interface StoredBatchImage {
    sourceHash: string;
    /** Digest of the user metadata and access (absent: none), so a metadata change is a PATCH. */
    meta?: string;
    /** Taken over (5409 with the same source hash) rather than uploaded. */
    adopted?: true;
}

export interface BatchOutputs extends Omit<BatchInputs, "images" | "concurrency"> {
    images: Record<string, StoredBatchImage>;
    /** `https://imagedelivery.net/<hash>/{id}/public`: replace `{id}` (with `%` as `%25`) for an image's delivery URL. */
    deliveryUrlTemplate?: string;
}

export const DEFAULT_BATCH_CONCURRENCY = 32;
export const MAX_BATCH_CONCURRENCY = 64;

const BATCH_KEYS = ["accountId", "owner", "images", "apiToken", "apiBaseUrl", "onConflict", "s3", "concurrency"];
const IMAGE_KEYS = ["url", "filePath", "sourceHash", "metadata", "requireSignedURLs"];
/** Batch-level inputs, checked once with the per-image rules. */
const SHARED_KEYS = ["accountId", "owner", "apiToken", "apiBaseUrl", "onConflict", "s3"];

/** `images["a/b.png"].sourceHash`: the property path of one image's input. */
export function imageProperty(id: string, property?: string): string {
    return `images[${JSON.stringify(id)}]${property === undefined ? "" : `.${property}`}`;
}

/** Every problem with a batch's inputs, with no I/O; unknown values (preview) are skipped. */
export function checkBatchInputs(news: Record<string, unknown>): CheckFailure[] {
    const failures: CheckFailure[] = [];
    for (const key of Object.keys(news)) {
        if (key !== "__provider" && news[key] !== undefined && !BATCH_KEYS.includes(key)) {
            failures.push({ property: key, reason: `unknown property "${key}": CloudflareImageBatch accepts ${BATCH_KEYS.join(", ")}` });
        }
    }
    if (news.owner === undefined) failures.push({ property: "owner", reason: "owner is required: the resource class sets it to \"<stack>/<name>\"" });
    const c = news.concurrency;
    if (c !== undefined && c !== UNKNOWN && !(Number.isInteger(c) && (c as number) >= 1 && (c as number) <= MAX_BATCH_CONCURRENCY)) {
        failures.push({ property: "concurrency", reason: `concurrency must be a whole number from 1 to ${MAX_BATCH_CONCURRENCY}` });
    }
    const shared = Object.fromEntries(SHARED_KEYS.filter((k) => news[k] !== undefined).map((k) => [k, news[k]]));
    const images = news.images;
    if (images === UNKNOWN) return failures;
    if (typeof images !== "object" || images === null || Array.isArray(images)) {
        failures.push({ property: "images", reason: "images must be an object: custom ID -> { url | filePath, sourceHash, metadata?, requireSignedURLs? }" });
        return failures;
    }
    const sharedFailures = new Map<string, CheckFailure>();
    for (const [id, entry] of Object.entries(images as Record<string, unknown>)) {
        if (entry === UNKNOWN) continue;
        if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
            failures.push({ property: imageProperty(id), reason: "each image must be an object { url | filePath, sourceHash, metadata?, requireSignedURLs? }" });
            continue;
        }
        for (const key of Object.keys(entry)) {
            if (!IMAGE_KEYS.includes(key)) {
                failures.push({ property: imageProperty(id, key), reason: `unknown property "${key}": an image of a batch takes ${IMAGE_KEYS.join(", ")}` });
            }
        }
        const own = Object.fromEntries(IMAGE_KEYS.filter((k) => (entry as Record<string, unknown>)[k] !== undefined).map((k) => [k, (entry as Record<string, unknown>)[k]]));
        for (const f of checkImageInputs({ ...shared, ...own, imageId: id }, "CloudflareImageBatch")) {
            const top = f.property.split(".")[0]!;
            if (SHARED_KEYS.includes(top)) sharedFailures.set(f.property + f.reason, f);
            else failures.push({ property: top === "imageId" ? imageProperty(id) : imageProperty(id, f.property), reason: f.reason });
        }
    }
    return [...sharedFailures.values(), ...failures];
}

/** The inputs as create/update use them; throws a readable error when check() would have failed. */
export function parseBatchInputs(props: Record<string, unknown>): BatchInputs {
    const failures = checkBatchInputs(props);
    if (failures.length > 0) {
        const shown = failures.slice(0, 20).map((f) => `${f.property}: ${f.reason}`).join("; ");
        throw new Error(`invalid CloudflareImageBatch inputs: ${shown}${failures.length > 20 ? `; and ${failures.length - 20} more` : ""}`);
    }
    const inputs = Object.fromEntries(BATCH_KEYS.filter((k) => props[k] !== undefined && props[k] !== null).map((k) => [k, props[k]]));
    return { images: {}, ...inputs } as unknown as BatchInputs;
}

/** One image of the batch as CloudflareImage's logic sees it (image-upload.ts). */
export function imageInputsOf(batch: BatchInputs, id: string): ImageInputs {
    const entry = batch.images[id]!;
    return {
        accountId: batch.accountId, imageId: id, url: entry.url, filePath: entry.filePath, sourceHash: entry.sourceHash,
        metadata: entry.metadata, requireSignedURLs: entry.requireSignedURLs, onConflict: batch.onConflict, s3: batch.s3,
        owner: batch.owner,
    };
}

/** Digest of what a PATCH sets besides the reserved keys; undefined for no metadata and public access. */
export function metaDigest(metadata: Record<string, unknown> | undefined, requireSignedURLs: boolean | undefined): string | undefined {
    const empty = (metadata === undefined || Object.keys(metadata).length === 0) && !requireSignedURLs;
    if (empty) return undefined;
    return createHash("sha256").update(canonical({ m: metadata ?? {}, s: requireSignedURLs ?? false })).digest("base64url").slice(0, 12);
}

/** The stored entry for an image the program wants (after a successful upload, adoption or PATCH). */
export function storedImage(entry: BatchImageInput, adopted: boolean): StoredBatchImage {
    const meta = metaDigest(entry.metadata, entry.requireSignedURLs);
    return { sourceHash: entry.sourceHash, ...(meta === undefined ? {} : { meta }), ...(adopted ? { adopted: true } : {}) };
}

/** The stored entry for an image as Cloudflare holds it now (refresh). */
export function storedFromCloudflare(image: StoredImageView, previous: StoredBatchImage): StoredBatchImage {
    const recorded = unpackMetadata(image.meta);
    const meta = metaDigest(recorded.metadata, image.requireSignedURLs);
    return {
        sourceHash: recorded.sourceHash ?? previous.sourceHash,
        ...(meta === undefined ? {} : { meta }),
        ...(previous.adopted ? { adopted: true } : {}),
    };
}

/** `https://imagedelivery.net/<hash>/{id}/public` from an uploaded image's variants (no account hash needed). */
export function deliveryUrlTemplate(imageId: string, variants: string[]): string | undefined {
    const url = variants.find((v) => v.endsWith("/public")) ?? variants[0];
    if (url === undefined) return undefined;
    const encoded = imageId.replace(/%/g, "%25");
    const at = url.lastIndexOf(`/${encoded}/`);
    return at < 0 ? undefined : `${url.slice(0, at)}/{id}${url.slice(at + encoded.length + 1)}`;
}

/** An image's delivery URL from the batch's template. */
export function deliveryUrlFromTemplate(template: string, imageId: string): string {
    return template.replace("{id}", imageId.replace(/%/g, "%25"));
}

/** What an update does per image, from the stored outputs (olds) against the new inputs, never the stored inputs. */
export interface BatchPlan {
    /** Not in state: upload (or adopt). */
    add: string[];
    /** In state with another source hash: delete ours, upload the new bytes. */
    reupload: string[];
    /** Same bytes, other metadata or access, or a new owner tag: PATCH. */
    patch: string[];
    /** In state, no longer wanted: delete unless another resource took it over. */
    remove: string[];
    unchanged: string[];
    /** Changes that need no API call (token, endpoint). */
    settingsChanged: boolean;
}

const norm = (v: unknown) => canonical(v ?? null);

export function planBatch(olds: Record<string, unknown>, news: Record<string, unknown>): BatchPlan {
    const stored = (olds.images ?? {}) as Record<string, StoredBatchImage>;
    const wanted = (news.images === UNKNOWN ? {} : news.images ?? {}) as Record<string, BatchImageInput | string>;
    const plan: BatchPlan = { add: [], reupload: [], patch: [], remove: [], unchanged: [], settingsChanged: false };
    const otherAccount = olds.accountId !== undefined && olds.accountId !== news.accountId;
    const retag = typeof olds.owner === "string" && olds.owner !== news.owner;
    for (const [id, entry] of Object.entries(wanted)) {
        const old = otherAccount ? undefined : stored[id];
        if (!old) plan.add.push(id);
        else if (entry === UNKNOWN || typeof entry !== "object") plan.patch.push(id); // not known yet (preview): a change
        else if (entry.sourceHash !== old.sourceHash) plan.reupload.push(id);
        else if (retag || metaDigest(entry.metadata, entry.requireSignedURLs) !== old.meta) plan.patch.push(id);
        else plan.unchanged.push(id);
    }
    for (const id of Object.keys(stored)) {
        if (otherAccount || !(id in wanted)) plan.remove.push(id);
    }
    plan.settingsChanged = ["apiToken", "apiBaseUrl"].some((k) => norm(olds[k]) !== norm(news[k]));
    return plan;
}

export function planHasChanges(plan: BatchPlan): boolean {
    return plan.add.length + plan.reupload.length + plan.patch.length + plan.remove.length > 0 || plan.settingsChanged;
}
