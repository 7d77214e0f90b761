import type * as pulumi from "@pulumi/pulumi";
import { CloudflareApiError, redact } from "./errors";
import { diffImage, needsPatch } from "./image-diff";
import { checkImageInputs, ImageInputs, parseImageInputs, pickInputs } from "./image-inputs";
import { ImageOutputs, imageOutputs, StoredImageView } from "./image-outputs";
import { CfImage, ImagesClient } from "./images-client";
import { ConfigSource, configuredApiToken, ProviderSettings, readProviderSettings, resolveApiToken, withTokenFallback } from "./provider-config";
import { packMetadata, unpackMetadata } from "./source-metadata";

// Module state lives in the host process for one deployment (the shim requires this module once per process).
let settings: ProviderSettings = { aws: {} };

/** Upload attempts when the custom ID changes hands between our upload and our GET (deleted, or overwritten). */
const MAX_CONFLICT_ROUNDS = 3;

function client(accountId: string, apiToken: string, apiBaseUrl: string | undefined): ImagesClient {
    return new ImagesClient({
        accountId,
        apiToken,
        apiBaseUrl: apiBaseUrl ?? settings.apiBaseUrl,
        rateLimit: settings.rateLimit,
        useBatchApi: settings.useBatchApi,
        timeoutMs: settings.requestTimeoutMs,
    });
}

/** Secrets a message could carry: the input token, the configured one, AWS keys. */
function knownSecrets(props?: Record<string, unknown>): (string | undefined)[] {
    const input = typeof props?.apiToken === "string" ? props.apiToken : undefined;
    return [input, configuredApiToken(settings, process.env), settings.aws.secretKey, settings.aws.token];
}

/** Rethrows with every known secret removed from the message (the host logs messages and stacks). */
async function guarded<T>(props: Record<string, unknown> | undefined, work: () => Promise<T>): Promise<T> {
    try {
        return await work();
    } catch (e) {
        const err = e as Error;
        throw new Error(redact(err.message ?? String(e), knownSecrets(props)));
    }
}

/** `call` with a client on the stored token, falling back to the configured one (provider-config.ts). */
function withStoredToken<T>(stored: ImageOutputs, call: (c: ImagesClient) => Promise<T>): Promise<T> {
    return withTokenFallback(stored.apiToken, settings, process.env, (token) => call(client(stored.accountId, token, stored.apiBaseUrl)));
}

function sameUserMetadata(image: CfImage, inputs: ImageInputs): boolean {
    const { metadata } = unpackMetadata(image.meta);
    const want = inputs.metadata ?? {};
    const keys = new Set([...Object.keys(metadata), ...Object.keys(want)]);
    return [...keys].every((k) => metadata[k] === want[k]);
}

async function uploadSource(api: ImagesClient, inputs: ImageInputs): Promise<CfImage> {
    // The AWS SDK is loaded only when an s3:// source needs it: it is most of the host's start-up time otherwise.
    const url = inputs.url?.startsWith("s3://")
        ? await (await import("./s3-presign")).presignS3Url(inputs.url, inputs.s3, settings.aws)
        : inputs.url;
    return api.upload({
        id: inputs.imageId,
        url,
        filePath: inputs.url === undefined ? inputs.filePath : undefined,
        metadata: packMetadata(inputs.metadata, inputs.sourceHash),
        requireSignedURLs: inputs.requireSignedURLs,
    });
}

/**
 * Uploads under the custom ID. "Already exists" (5409) reads the image: our source hash means it is ours (a retried
 * create after a crash or a dropped answer) and is adopted; anything else follows onConflict.
 */
async function uploadOrAdopt(api: ImagesClient, inputs: ImageInputs): Promise<{ image: CfImage; adopted: boolean }> {
    const id = inputs.imageId;
    for (let round = 0; round < MAX_CONFLICT_ROUNDS; round++) {
        try {
            return { image: await uploadSource(api, inputs), adopted: false };
        } catch (e) {
            if (!(e instanceof CloudflareApiError && e.hasCode(5409))) throw e;
        }
        const existing = await api.get(id);
        if (!existing) continue; // deleted since our upload was refused: upload again
        const theirs = unpackMetadata(existing.meta).sourceHash;
        if (theirs === inputs.sourceHash) {
            // Same bytes: ours. Bring metadata and access in line with the program if they drifted.
            const requireSignedURLs = inputs.requireSignedURLs ?? false;
            const settled = sameUserMetadata(existing, inputs) && existing.requireSignedURLs === requireSignedURLs
                ? existing
                : await api.update(id, { metadata: packMetadata(inputs.metadata, inputs.sourceHash), requireSignedURLs });
            return { image: settled, adopted: true };
        }
        const recorded = theirs === undefined ? "not recorded (not uploaded by sourcing-kit)" : `"${theirs}"`;
        const hashes = `its source hash is ${recorded}, ours is "${inputs.sourceHash}"`;
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

/** The stored outputs as the image view that imageOutputs expects (no API call). */
function viewOfOutputs(olds: ImageOutputs, inputs: ImageInputs): StoredImageView {
    return {
        id: inputs.imageId,
        filename: olds.filename,
        meta: packMetadata(inputs.metadata, inputs.sourceHash),
        requireSignedURLs: olds.requireSignedURLs ?? false,
        uploaded: olds.uploaded,
        variants: olds.variants ?? [],
    };
}

/** The implementation behind the serialized shim (provider/shim.ts): CloudflareImage's CRUD over ImagesClient. */
export const provider: pulumi.dynamic.ResourceProvider = {
    async configure(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
        settings = readProviderSettings(req.config as ConfigSource);
    },

    async check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
        const failures = checkImageInputs(news);
        const inputs = Object.fromEntries(Object.entries(news).filter(([k, v]) => k !== "__provider" && v !== undefined));
        return { inputs, failures };
    },

    async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.DiffResult> {
        return diffImage(olds, news);
    },

    async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
        return guarded(props, async () => {
            const inputs = parseImageInputs(props);
            const api = client(inputs.accountId, resolveApiToken(inputs.apiToken, settings, process.env), inputs.apiBaseUrl);
            try {
                const { image, adopted } = await uploadOrAdopt(api, inputs);
                return { id: inputs.imageId, outs: imageOutputs(inputs, image, adopted) };
            } catch (e) {
                const source = inputs.url ?? `file ${inputs.filePath}`;
                throw new Error(`image "${inputs.imageId}" from ${source}: ${(e as Error).message}`);
            }
        });
    },

    async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
        return guarded(props, async () => {
            const stored = props as unknown as ImageOutputs;
            const image = await withStoredToken(stored, (api) => api.get(stored.imageId ?? id));
            if (!image) return { id: "" }; // gone: refresh drops it from state
            const recorded = unpackMetadata(image.meta);
            // Not validated: what Cloudflare holds now may break our rules (changed out of band); the next diff shows it.
            const inputs = {
                ...pickInputs(props),
                sourceHash: recorded.sourceHash ?? stored.sourceHash,
                metadata: recorded.metadata,
            } as ImageInputs;
            return { id, props: imageOutputs(inputs, image, stored.adopted ?? false), inputs: { ...inputs } };
        });
    },

    async update(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.UpdateResult> {
        return guarded(news, async () => {
            const stored = olds as unknown as ImageOutputs;
            const inputs = parseImageInputs(news);
            const patch = needsPatch(olds, news);
            if (!patch.metadata && !patch.requireSignedURLs) {
                return { outs: imageOutputs(inputs, viewOfOutputs(stored, inputs), stored.adopted ?? false) };
            }
            const api = client(inputs.accountId, resolveApiToken(inputs.apiToken, settings, process.env), inputs.apiBaseUrl);
            const image = await api.update(inputs.imageId, {
                metadata: patch.metadata ? packMetadata(inputs.metadata, inputs.sourceHash) : undefined,
                requireSignedURLs: patch.requireSignedURLs ? inputs.requireSignedURLs ?? false : undefined,
            });
            return { outs: imageOutputs(inputs, image, stored.adopted ?? false) };
        });
    },

    async delete(id: string, props: Record<string, unknown>): Promise<void> {
        await guarded(props, async () => {
            const stored = props as unknown as ImageOutputs;
            await withStoredToken(stored, (api) => api.delete(stored.imageId ?? id)); // "not-found" counts as done
        });
    },
};
