import type * as pulumi from "@pulumi/pulumi";
import { redact } from "./errors";
import { diffImage, needsPatch } from "./image-diff";
import { checkImageInputs, ImageInputs, parseImageInputs, pickInputs } from "./image-inputs";
import { ImageOutputs, imageOutputs, StoredImageView } from "./image-outputs";
import { ImagesClient } from "./images-client";
import { claimImage, deleteIfOwned, uploadOrAdopt, wantedMetadata } from "./image-upload";
import { ConfigSource, configuredApiToken, ProviderSettings, readProviderSettings, resolveApiToken, withTokenFallback } from "./provider-config";
import { unpackMetadata } from "./source-metadata";

// Module state lives in the host process for one deployment (the shim requires this module once per process).
let settings: ProviderSettings = { aws: {} };

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

/** The stored outputs as the image view that imageOutputs expects (no API call). */
function viewOfOutputs(olds: ImageOutputs, inputs: ImageInputs): StoredImageView {
    return {
        id: inputs.imageId,
        filename: olds.filename,
        meta: wantedMetadata(inputs),
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
        if (typeof news.imageId === "string" && typeof news.owner === "string") claimImage(news.imageId, news.owner);
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
                claimImage(inputs.imageId, inputs.owner);
                const { image, adopted } = await uploadOrAdopt(api, inputs, settings.aws);
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
                metadata: patch.metadata ? wantedMetadata(inputs) : undefined,
                requireSignedURLs: patch.requireSignedURLs ? inputs.requireSignedURLs ?? false : undefined,
            });
            return { outs: imageOutputs(inputs, image, stored.adopted ?? false) };
        });
    },

    async delete(id: string, props: Record<string, unknown>): Promise<void> {
        await guarded(props, async () => {
            const stored = props as unknown as ImageOutputs;
            // "not-found" counts as done; an image another resource took over in this deployment is only forgotten.
            await withStoredToken(stored, (api) => deleteIfOwned(api, stored.imageId ?? id, stored.owner));
        });
    },
};
