import type { ImageInputs } from "./image-inputs";
import type { CfImage } from "./images-client";
import { unpackMetadata } from "./source-metadata";

/** What the provider needs from an image as Cloudflare describes it. */
export type StoredImageView = Omit<CfImage, "creator">;

/** Outputs stored in state: the inputs delete/read/update need without the program, plus what Cloudflare reports. */
export interface ImageOutputs extends ImageInputs {
    deliveryUrl: string;
    variants: string[];
    uploaded: string;
    filename: string;
    adopted: boolean;
}

/**
 * `<base>/<hash>/<id>/<variant>`, base https://imagedelivery.net or a same-account zone's
 * `https://<zone>/cdn-cgi/imagedelivery`; a `%` in a custom ID must be written `%25` in delivery URLs.
 */
export function deliveryUrlFor(accountHash: string, imageId: string, variant = "public", baseUrl = "https://imagedelivery.net"): string {
    return `${baseUrl}/${accountHash}/${imageId.replace(/%/g, "%25")}/${variant}`;
}

/** The `public` variant URL when the account has it, else the first one Cloudflare lists. */
export function pickDeliveryUrl(variants: string[]): string {
    return variants.find((v) => v.endsWith("/public")) ?? variants[0] ?? "";
}

/**
 * The full output set: always all of it, because the engine stores create/update outputs exactly as returned.
 * The token is kept only when it was an input (the resource marks it secret); a configured token is never stored.
 */
export function imageOutputs(inputs: ImageInputs, image: StoredImageView, adopted: boolean): ImageOutputs {
    const { metadata } = unpackMetadata(image.meta);
    const outputs: ImageOutputs = {
        ...inputs,
        metadata: Object.keys(metadata).length > 0 ? (metadata as ImageInputs["metadata"]) : inputs.metadata,
        requireSignedURLs: image.requireSignedURLs,
        deliveryUrl: pickDeliveryUrl(image.variants),
        variants: image.variants,
        uploaded: image.uploaded,
        filename: image.filename ?? "",
        adopted,
    };
    return dropUndefined(outputs);
}

export function dropUndefined<T extends object>(value: T): T {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
