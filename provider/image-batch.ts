import * as pulumi from "@pulumi/pulumi";
import { ownerOf } from "./image";
import { providerShim } from "./shim";

export { deliveryUrlFromTemplate } from "./image-batch-plan";
export type { StoredBatchImage } from "./image-batch-plan";

/** One image of a batch, keyed by its custom ID: the per-image inputs of CloudflareImage. */
export interface CloudflareImageBatchEntry {
    /** An http(s) URL Cloudflare fetches, or `s3://bucket/key` presigned by the provider at upload time. */
    url?: string;
    /** A local file the provider streams up; exactly one of `url` and `filePath`. */
    filePath?: string;
    /** ETag, sha256 or version of the source bytes: a new value re-uploads this image (and only it). */
    sourceHash: string;
    metadata?: Record<string, string | number | boolean>;
    requireSignedURLs?: boolean;
}

/** Inputs of a batch (see DESIGN.md "Batch mode"): the images, then what CloudflareImage takes once per image. */
export interface CloudflareImageBatchArgs {
    accountId: pulumi.Input<string>;
    /** Custom ID -> image. */
    images: pulumi.Input<Record<string, CloudflareImageBatchEntry>>;
    /** Falls back to `cloudflare:apiToken`, then `CLOUDFLARE_API_TOKEN`; always stored as a secret. */
    apiToken?: pulumi.Input<string>;
    apiBaseUrl?: pulumi.Input<string>;
    onConflict?: pulumi.Input<"adopt" | "overwrite" | "fail">;
    s3?: pulumi.Input<{ region?: string; endpoint?: string; forcePathStyle?: boolean }>;
    /** Uploads in flight at once inside this batch (1-64, default 32), paced by the process-wide limiter. */
    concurrency?: pulumi.Input<number>;
}

// One shim for every batch: Pulumi caches the serialized text per provider object.
const provider = providerShim("image-batch-provider");

/**
 * Up to N images of one set in one resource: per image the rules of CloudflareImage (upload under the custom ID,
 * adopt on 5409 with the same source hash, onConflict otherwise, re-upload on a new hash, PATCH for metadata), with
 * uploads concurrent inside the resource. A partial failure keeps the images that landed; the next up sends only the
 * others. The ID and owner tag are "<stack>/<name>".
 */
export class CloudflareImageBatch extends pulumi.dynamic.Resource {
    declare readonly owner: pulumi.Output<string>;
    /** Custom ID -> { sourceHash, meta? (digest of metadata and access), adopted? }. */
    declare readonly images: pulumi.Output<Record<string, { sourceHash: string; meta?: string; adopted?: true }>>;
    /** `<delivery base>/<hash>/{id}/public` once an image was uploaded: see deliveryUrlFromTemplate. */
    declare readonly deliveryUrlTemplate: pulumi.Output<string | undefined>;

    constructor(name: string, args: CloudflareImageBatchArgs, opts?: pulumi.CustomResourceOptions) {
        const props = {
            ...args,
            apiToken: args.apiToken === undefined ? undefined : pulumi.secret(args.apiToken),
            owner: ownerOf(name),
            deliveryUrlTemplate: undefined,
        };
        const additionalSecretOutputs = [...new Set([...(opts?.additionalSecretOutputs ?? []), "apiToken"])];
        super(provider, name, props, { ...opts, additionalSecretOutputs }, "sourcing-kit", "CloudflareImageBatch");
    }
}
