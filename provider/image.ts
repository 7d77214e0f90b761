import * as pulumi from "@pulumi/pulumi";
import { providerShim } from "./shim";

export { deliveryUrlFor } from "./image-outputs";

/** Inputs of one image (see DESIGN.md "CloudflareImage"). */
export interface CloudflareImageArgs {
    accountId: pulumi.Input<string>;
    /** The custom ID: deterministic, at most 1024 characters, no leading/trailing `/`, never a UUID. */
    imageId: pulumi.Input<string>;
    /** An http(s) URL Cloudflare fetches, or `s3://bucket/key` presigned by the provider at create time. */
    url?: pulumi.Input<string>;
    /** A local file the provider streams up; exactly one of `url` and `filePath`. */
    filePath?: pulumi.Input<string>;
    /** ETag, sha256 or version of the source bytes: a new value replaces the image. */
    sourceHash: pulumi.Input<string>;
    metadata?: pulumi.Input<Record<string, pulumi.Input<string | number | boolean>>>;
    requireSignedURLs?: pulumi.Input<boolean>;
    /** Falls back to `cloudflare:apiToken`, then `CLOUDFLARE_API_TOKEN`; always stored as a secret. */
    apiToken?: pulumi.Input<string>;
    apiBaseUrl?: pulumi.Input<string>;
    onConflict?: pulumi.Input<"adopt" | "overwrite" | "fail">;
    s3?: pulumi.Input<{ region?: string; endpoint?: string; forcePathStyle?: boolean }>;
}

/**
 * The owner tag recorded in each image's metadata: "<stack>/<resource name>". Delete spares an image whose tag names
 * another resource (it moved there in this deployment); see provider/image-upload.ts.
 */
export function ownerOf(name: string): string {
    return `${pulumi.getStack()}/${name}`;
}

/** Outputs that hold credentials: stored as secrets even when the engine would not infer it. */
export const IMAGE_SECRET_OUTPUTS = ["apiToken"];

// One shim for every image: Pulumi caches the serialized text per provider object.
const provider = providerShim("image-provider");

/** One image in Cloudflare Images under a deterministic custom ID, uploaded from a URL, an S3 object or a file. */
export class CloudflareImage extends pulumi.dynamic.Resource {
    declare readonly imageId: pulumi.Output<string>;
    declare readonly deliveryUrl: pulumi.Output<string>;
    declare readonly variants: pulumi.Output<string[]>;
    declare readonly uploaded: pulumi.Output<string>;
    declare readonly filename: pulumi.Output<string>;
    declare readonly adopted: pulumi.Output<boolean>;
    declare readonly sourceHash: pulumi.Output<string>;

    constructor(name: string, args: CloudflareImageArgs, opts?: pulumi.CustomResourceOptions) {
        const props = {
            ...args,
            owner: ownerOf(name),
            apiToken: args.apiToken === undefined ? undefined : pulumi.secret(args.apiToken),
            deliveryUrl: undefined,
            variants: undefined,
            uploaded: undefined,
            filename: undefined,
            adopted: undefined,
        };
        const additionalSecretOutputs = [...new Set([...(opts?.additionalSecretOutputs ?? []), ...IMAGE_SECRET_OUTPUTS])];
        super(provider, name, props, { ...opts, additionalSecretOutputs }, "sourcing-kit", "CloudflareImage");
    }
}
