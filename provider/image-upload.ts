import { CloudflareApiError } from "./errors";
import type { ImageInputs } from "./image-inputs";
import type { CfImage, ImagesClient } from "./images-client";
import type { AwsSettings } from "./provider-config";
import { packMetadata, unpackMetadata } from "./source-metadata";

// One image's writes, shared by CloudflareImage (image-provider.ts) and CloudflareImageBatch (image-batch-provider.ts).

/** Upload attempts when the custom ID changes hands between our upload and our GET (deleted, or overwritten). */
const MAX_CONFLICT_ROUNDS = 3;

/** What Cloudflare should hold for one image: the user's metadata plus the reserved source-hash and owner keys. */
export function wantedMetadata(inputs: ImageInputs): Record<string, unknown> {
    return packMetadata(inputs.metadata, inputs.sourceHash, inputs.owner);
}

function sameUserMetadata(image: CfImage, inputs: ImageInputs): boolean {
    const { metadata } = unpackMetadata(image.meta);
    const want = inputs.metadata ?? {};
    const keys = new Set([...Object.keys(metadata), ...Object.keys(want)]);
    return [...keys].every((k) => metadata[k] === want[k]);
}

async function uploadSource(api: ImagesClient, inputs: ImageInputs, aws: AwsSettings): Promise<CfImage> {
    // The AWS SDK is loaded only when an s3:// source needs it: it is most of the host's start-up time otherwise.
    const url = inputs.url?.startsWith("s3://")
        ? await (await import("./s3-presign")).presignS3Url(inputs.url, inputs.s3, aws)
        : inputs.url;
    return api.upload({
        id: inputs.imageId,
        url,
        filePath: inputs.url === undefined ? inputs.filePath : undefined,
        metadata: wantedMetadata(inputs),
        requireSignedURLs: inputs.requireSignedURLs,
    });
}

/**
 * Uploads under the custom ID. "Already exists" (5409) reads the image: our source hash means it is ours (a retried
 * create after a crash, or an image moving here from another resource, whose owner tag is then taken over) and is
 * adopted; anything else follows onConflict.
 */
export async function uploadOrAdopt(api: ImagesClient, inputs: ImageInputs, aws: AwsSettings): Promise<{ image: CfImage; adopted: boolean }> {
    const id = inputs.imageId;
    for (let round = 0; round < MAX_CONFLICT_ROUNDS; round++) {
        try {
            return { image: await uploadSource(api, inputs, aws), adopted: false };
        } catch (e) {
            if (!(e instanceof CloudflareApiError && e.hasCode(5409))) throw e;
        }
        const existing = await api.get(id);
        if (!existing) continue; // deleted since our upload was refused: upload again
        const recorded = unpackMetadata(existing.meta);
        if (recorded.sourceHash === inputs.sourceHash) {
            // Same bytes: ours. Bring metadata, access and owner in line with the program if they differ.
            const requireSignedURLs = inputs.requireSignedURLs ?? false;
            const settled = sameUserMetadata(existing, inputs) && existing.requireSignedURLs === requireSignedURLs &&
                    (inputs.owner === undefined || recorded.owner === inputs.owner)
                ? existing
                : await api.update(id, { metadata: wantedMetadata(inputs), requireSignedURLs });
            return { image: settled, adopted: true };
        }
        const theirs = recorded.sourceHash === undefined ? "not recorded (not uploaded by sourcing-kit)" : `"${recorded.sourceHash}"`;
        const hashes = `its source hash is ${theirs}, ours is "${inputs.sourceHash}"`;
        const onConflict = inputs.onConflict ?? "adopt";
        if (onConflict === "overwrite") {
            await api.delete(id);
            continue;
        }
        if (onConflict === "fail") {
            throw new Error(`imageId: custom ID "${id}" already exists in account ${inputs.accountId} (${hashes}) and onConflict is fail: ` +
                `delete it, choose another imageId, or set onConflict: overwrite to replace it`);
        }
        throw new Error(`imageId: a different image already exists under custom ID "${id}" in account ${inputs.accountId} (${hashes}); ` +
            `adopt only takes over an image with the same source hash: set onConflict: overwrite to replace it, or choose another imageId`);
    }
    throw new Error(`imageId: custom ID "${id}" kept changing during the upload (${MAX_CONFLICT_ROUNDS} rounds of "already exists" ` +
        `then gone): another process is writing it; run again once it is done`);
}

/** True when `owner` may delete the image: it carries no owner tag (uploaded before tags, or by hand) or `owner`'s. */
export function ownedBy(image: Pick<CfImage, "meta">, owner: string | undefined): boolean {
    const tag = unpackMetadata(image.meta).owner;
    return tag === undefined || owner === undefined || tag === owner;
}

/**
 * Deletes the image unless another resource has taken it over (its owner tag names someone else): then it is only
 * forgotten. `known` is the image as already read (a listing), to save the GET. Gone counts as done.
 */
export async function deleteIfOwned(api: ImagesClient, id: string, owner: string | undefined, known?: CfImage | null): Promise<"deleted" | "not-found" | "kept"> {
    if (owner !== undefined) {
        const image = known === undefined ? await api.get(id) : known ?? undefined;
        if (!image) return "not-found";
        if (!ownedBy(image, owner) || claimedByOther(id, owner)) return "kept";
    }
    return api.delete(id);
}

// Process-wide (all resources of one deployment share the host process): which resource's check() or create/update
// declared each custom ID in this deployment. An image removed from one batch while another resource claims it is
// handed over, not deleted, even if the new owner has not tagged it yet.
const claims = new Map<string, string>();

/** Records that `owner` wants `id` in this deployment (called from check(), create() and update()). */
export function claimImage(id: string, owner: string | undefined): void {
    if (owner !== undefined) claims.set(id, owner);
}

/** True when a resource other than `owner` claimed `id` in this deployment. */
export function claimedByOther(id: string, owner: string): boolean {
    const claimant = claims.get(id);
    return claimant !== undefined && claimant !== owner;
}
