/**
 * `image.updated`: replace an image under its custom ID without ever losing it. The new source is fetched and checked
 * first (nothing changes when it is unusable), the current image's bytes and details are kept, then DELETE + upload of
 * the fetched bytes; when that fails, the kept bytes go back under the same ID.
 */
import { acceptedImageType, MAX_IMAGE_BYTES, METADATA_MAX_BYTES, metadataBytes, SOURCE_HASH_KEY, sourceHashOf } from "../image-bytes";
import {
    batchConfig, CODE_EXISTS, deleteImage, getImage, getImageBlob, ImageFile, ImagesApiConfig, ImagesApiError, uploadImageFile,
} from "./images-api";
import { readAtMost } from "./read-body";
import { RESTORE_RETRY } from "./retry";

/** A webhook refused before anything changed: 404 (not an image of the migration) or 422 (the new source is unusable). */
export class EventRefused extends Error {
    constructor(readonly status: 404 | 422, message: string) {
        super(message);
    }
}

/** The Images API failed during the replacement (502); `imagePresent`: an image is under the ID (normally the previous one, restored). */
export class ReimportFailed extends Error {
    constructor(message: string, readonly imagePresent: boolean) {
        super(message);
    }
}

const SOURCE_TIMEOUT_MS = 30_000;

/** GET the new source: status 200, bytes that sniff as an accepted image (the content type is not trusted), at most MAX_IMAGE_BYTES. */
export async function fetchSourceImage(sourceUrl: string): Promise<ImageFile> {
    const refuse = (why: string) => new EventRefused(422, `sourceUrl ${sourceUrl}: ${why}; the current image is unchanged`);
    let response: Response;
    try {
        response = await fetch(sourceUrl, { signal: AbortSignal.timeout(SOURCE_TIMEOUT_MS) });
    } catch (error) {
        throw refuse(`cannot be fetched (${error instanceof Error ? error.message : String(error)})`);
    }
    if (response.status !== 200) {
        await response.body?.cancel();
        throw refuse(`answered HTTP ${response.status}, expected 200`);
    }
    const declared = Number(response.headers.get("content-length") ?? "0");
    if (declared > MAX_IMAGE_BYTES) {
        await response.body?.cancel();
        throw refuse(`is ${declared} bytes, over the ${MAX_IMAGE_BYTES}-byte upload limit`);
    }
    const bytes = await readAtMost(response, MAX_IMAGE_BYTES).catch((error: unknown) => {
        throw refuse(`body could not be read (${error instanceof Error ? error.message : String(error)})`);
    });
    if (bytes === undefined) throw refuse(`is over the ${MAX_IMAGE_BYTES}-byte upload limit`);
    if (bytes.length === 0) throw refuse("is empty");
    const header = (response.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
    const contentType = acceptedImageType(bytes);
    if (contentType === undefined) {
        throw refuse(`is not an image (content-type "${header || "none"}"; Cloudflare Images takes PNG, JPEG, GIF, WebP, SVG or HEIC bytes)`);
    }
    return { bytes, contentType, filename: filenameOf(sourceUrl) };
}

function filenameOf(sourceUrl: string): string {
    const last = new URL(sourceUrl).pathname.split("/").pop() ?? "";
    try {
        return decodeURIComponent(last).slice(0, 255);
    } catch {
        return last.slice(0, 255);
    }
}

/**
 * Replaces `imageId` with the image at `sourceUrl` (metadata kept, SOURCE_HASH_KEY set to the new bytes' sha256);
 * returns the new delivery URLs. Throws EventRefused (nothing changed), ImagesApiError before the DELETE (nothing
 * changed) or ReimportFailed after it. The writes after the backup go to the batch host, so the account's rate limit
 * cannot cut the DELETE off from the upload and the restore.
 */
export async function reimportImage(account: ImagesApiConfig, imageId: string, sourceUrl: string): Promise<string[]> {
    const file = await fetchSourceImage(sourceUrl);
    const current = await getImage(account, imageId);
    const backup = current ? { ...(await getImageBlob(account, imageId)), filename: current.filename } : undefined;
    const newHash = await sourceHashOf(file.bytes);
    const metadata = { ...(current?.meta ?? {}), [SOURCE_HASH_KEY]: newHash };
    if (metadataBytes(metadata) > METADATA_MAX_BYTES) {
        throw new EventRefused(422, `image ${imageId}: its metadata with ${SOURCE_HASH_KEY} would be ${metadataBytes(metadata)} bytes, ` +
            `over Cloudflare's ${METADATA_MAX_BYTES}; shorten the image's metadata in the stack; the current image is unchanged`);
    }
    const images = await batchConfig(account);
    const kept = { requireSignedURLs: current?.requireSignedURLs, ...(current?.creator !== undefined ? { creator: current.creator } : {}) };
    try {
        await deleteImage(images, imageId);
        return await uploadOwn(images, imageId, file, { metadata, ...kept });
    } catch (error) {
        if (!(error instanceof ImagesApiError)) throw error;
        const failed = `re-import of ${imageId} failed: ${error.message}`;
        if (!backup || !current) throw new ReimportFailed(`${failed}; there was no previous image to restore`, false);
        const outcome = await restore({ ...images, retry: RESTORE_RETRY }, imageId, backup, { metadata: current.meta, ...kept }, newHash);
        if (outcome.kind === "new") return outcome.variants;
        throw new ReimportFailed(`${failed}; ${outcome.message}`, outcome.kind !== "missing");
    }
}

type UploadOptions = Parameters<typeof uploadImageFile>[3];

/** What is under the ID after a 5409: its SOURCE_HASH_KEY and delivery URLs, or why it could not be read. */
async function existing(images: ImagesApiConfig, imageId: string): Promise<{ hash: unknown; variants: string[] } | { unreadable: string } | undefined> {
    try {
        const image = await getImage(images, imageId);
        return image && { hash: image.meta[SOURCE_HASH_KEY], variants: image.variants };
    } catch (error) {
        return { unreadable: error instanceof Error ? error.message : String(error) };
    }
}

/** Uploads into the custom ID; a 5409 whose image carries this upload's hash is this upload, landed on an attempt whose answer was lost. */
async function uploadOwn(images: ImagesApiConfig, imageId: string, file: ImageFile, options: UploadOptions): Promise<string[]> {
    try {
        return await uploadImageFile(images, imageId, file, options);
    } catch (error) {
        if (!(error instanceof ImagesApiError && error.codes.includes(CODE_EXISTS))) throw error;
        const found = await existing(images, imageId);
        if (found && "hash" in found && found.hash === options.metadata[SOURCE_HASH_KEY]) return found.variants;
        throw error;
    }
}

type RestoreOutcome = { kind: "restored" | "present" | "missing"; message: string } | { kind: "new"; variants: string[] };

/** Uploads the kept bytes and details under the same ID again; a 5409 is read to tell the backup, the new image (a lost answer) or another. */
async function restore(images: ImagesApiConfig, imageId: string, backup: ImageFile, options: UploadOptions, newHash: string): Promise<RestoreOutcome> {
    try {
        await uploadImageFile(images, imageId, backup, options);
        return { kind: "restored", message: "the previous image was restored" };
    } catch (error) {
        if (error instanceof ImagesApiError && error.codes.includes(CODE_EXISTS)) {
            const found = await existing(images, imageId);
            if (found && "hash" in found && found.hash === newHash) return { kind: "new", variants: found.variants };
            // Only a defined backup hash identifies the backup: a foreign image without `_skh` is not "restored".
            const backupHash = options.metadata[SOURCE_HASH_KEY];
            if (found && "hash" in found && backupHash !== undefined && found.hash === backupHash) {
                return { kind: "restored", message: "the previous image was restored (or never deleted)" };
            }
            if (!found) return { kind: "missing", message: `${imageId} answered "already exists" to the restore, then "not found": it is missing until a retry succeeds` };
            const what = "unreadable" in found ? `it could not be read: ${found.unreadable}` : "it is neither the previous nor the new image";
            return { kind: "present", message: `an image exists under ${imageId} (${what})` };
        }
        const why = error instanceof Error ? error.message : String(error);
        return { kind: "missing", message: `restoring the previous image failed too (${why}): ${imageId} is missing until a retry succeeds` };
    }
}
