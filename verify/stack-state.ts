// What `verify` checks, read out of `pulumi stack export`: every image and every redirect shard the stack manages.
import { z } from "zod";

export const IMAGE_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";
export const ROWS_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:RedirectRows";

/** One CloudflareImage as its state records it (only what verify needs; secrets are never read). */
export interface StateImage {
    imageId: string;
    accountId: string;
    apiBaseUrl?: string;
    sourceHash: string;
    /** The source the provider uploaded from: an http(s) or s3:// URL, or a local file. */
    url?: string;
    filePath?: string;
    s3?: { region?: string; endpoint?: string; forcePathStyle?: boolean };
    deliveryUrl?: string;
}

/** One RedirectRows shard: the rows it owns in its D1 database. */
export interface StateShard {
    shard: string;
    accountId: string;
    databaseId: string;
    apiBaseUrl?: string;
    /** Redirect key (a normalised path, or host + path with matchHost) -> delivery URL. */
    rows: Record<string, string>;
}

export interface StackState {
    images: StateImage[];
    shards: StateShard[];
    /** The stack's outputs (secret ones left as the engine's secret envelope). */
    outputs: Record<string, unknown>;
    /** Resources still marked pending (an interrupted up): their images may or may not exist. */
    pending: number;
}

const ImageOutputsSchema = z.object({
    imageId: z.string(),
    accountId: z.string(),
    apiBaseUrl: z.string().optional(),
    sourceHash: z.string(),
    url: z.string().optional(),
    filePath: z.string().optional(),
    s3: z.object({ region: z.string().optional(), endpoint: z.string().optional(), forcePathStyle: z.boolean().optional() }).optional(),
    deliveryUrl: z.string().optional(),
});

const RowsOutputsSchema = z.object({
    shard: z.string(),
    accountId: z.string(),
    databaseId: z.string(),
    apiBaseUrl: z.string().optional(),
    rows: z.record(z.string(), z.string()),
});

const ExportSchema = z.object({
    version: z.number(),
    deployment: z.object({
        resources: z.array(z.object({
            urn: z.string(),
            type: z.string(),
            outputs: z.record(z.string(), z.unknown()).optional(),
        })).nullish(),
        pending_operations: z.array(z.unknown()).nullish(),
    }),
});

/** Pure: the images, shards and outputs of a `pulumi stack export` document; a resource that does not parse is named. */
export function readStackExport(document: unknown): StackState {
    const parsed = ExportSchema.safeParse(document);
    if (!parsed.success) {
        throw new Error(`not a Pulumi stack export (${parsed.error.issues[0]?.message ?? "unexpected shape"}); ` +
            "is this a stack of a different tool, or an export from a newer Pulumi?");
    }
    const resources = parsed.data.deployment.resources ?? [];
    const images: StateImage[] = [];
    const shards: StateShard[] = [];
    let outputs: Record<string, unknown> = {};
    for (const resource of resources) {
        if (resource.type === "pulumi:pulumi:Stack") outputs = resource.outputs ?? {};
        const schema = resource.type === IMAGE_TYPE ? ImageOutputsSchema : resource.type === ROWS_TYPE ? RowsOutputsSchema : undefined;
        if (schema === undefined) continue;
        const out = schema.safeParse(resource.outputs ?? {});
        if (!out.success) {
            throw new Error(`${resource.urn}: its state lacks ${out.error.issues.map((i) => i.path.join(".")).join(", ")}; ` +
                "run pulumi refresh on the stack, then verify again");
        }
        if (resource.type === IMAGE_TYPE) images.push(out.data as StateImage);
        else shards.push(out.data as StateShard);
    }
    return { images, shards, outputs, pending: parsed.data.deployment.pending_operations?.length ?? 0 };
}
