import type * as pulumi from "@pulumi/pulumi";
import { redact } from "./errors";
import {
    BatchInputs, BatchOutputs, checkBatchInputs, DEFAULT_BATCH_CONCURRENCY, deliveryUrlTemplate, imageInputsOf, parseBatchInputs,
    planBatch, planHasChanges, StoredBatchImage, storedFromCloudflare, storedImage,
} from "./image-batch-plan";
import { dropUndefined } from "./image-outputs";
import { claimImage, deleteIfOwned, uploadOrAdopt, wantedMetadata } from "./image-upload";
import { CfImage, ImagesClient } from "./images-client";
import { forEachConcurrently } from "./pool";
import { ConfigSource, configuredApiToken, ProviderSettings, readProviderSettings, resolveApiToken, withTokenFallback } from "./provider-config";

// Module state lives in the host process for one deployment (the shim requires this module once per process).
let settings: ProviderSettings = { aws: {} };

/** Seconds between progress lines of a running batch (SOURCING_KIT_PROGRESS_SECONDS overrides, e.g. in tests). */
const PROGRESS_SECONDS = 10;

function client(accountId: string, apiToken: string, apiBaseUrl: string | undefined): ImagesClient {
    return new ImagesClient({
        accountId, apiToken, apiBaseUrl: apiBaseUrl ?? settings.apiBaseUrl, rateLimit: settings.rateLimit,
        useBatchApi: settings.useBatchApi, timeoutMs: settings.requestTimeoutMs,
    });
}

function knownSecrets(props?: Record<string, unknown>): (string | undefined)[] {
    const input = typeof props?.apiToken === "string" ? props.apiToken : undefined;
    return [input, configuredApiToken(settings, process.env), settings.aws.secretKey, settings.aws.token];
}

const clean = (props: Record<string, unknown> | undefined, text: string) => redact(text, knownSecrets(props));

/** The stored token's client, falling back to the configured token when Cloudflare rejects it (rotation). */
function withStoredToken<T>(stored: BatchOutputs, call: (c: ImagesClient) => Promise<T>): Promise<T> {
    return withTokenFallback(stored.apiToken, settings, process.env, (token) => call(client(stored.accountId, token, stored.apiBaseUrl)));
}

/** One line on stderr every PROGRESS_SECONDS while a batch works: the CLI shows it as an info line of the stack. */
function startProgress(owner: string, verb: string, total: number): { step(): void; stop(): void } {
    const started = Date.now();
    let done = 0;
    const seconds = Number(process.env.SOURCING_KIT_PROGRESS_SECONDS) || PROGRESS_SECONDS;
    const timer = setInterval(() => {
        const elapsed = (Date.now() - started) / 1000;
        const rate = done / Math.max(elapsed, 0.001);
        const eta = rate > 0 ? `${Math.ceil((total - done) / rate)} s` : "unknown";
        console.error(`CloudflareImageBatch ${owner}: ${verb} ${done}/${total} images, ${rate.toFixed(1)} images/s, ETA ${eta}`);
    }, seconds * 1000);
    timer.unref();
    return { step: () => void done++, stop: () => clearInterval(timer) };
}

/** The images with these IDs as Cloudflare holds them (null: missing), by GETs or a listing, whichever is cheaper. */
function fetchImages(api: ImagesClient, ids: string[], concurrency: number): Promise<Map<string, CfImage | null>> {
    return api.find(ids, { concurrency, listAbove: 50 });
}

/** The partial failure the engine stores (docs/engine-findings/dynamic-provider-partial-state.md). */
function partialFailure(id: string, outs: BatchOutputs, provider: unknown, reasons: string[], total: number): Error {
    const summary = `${reasons.length} of ${total} images failed; the others are in state and the next up retries only these`;
    return Object.assign(new Error(summary), {
        id,
        properties: { ...outs, __provider: provider },
        reasons: [summary, ...reasons],
    });
}

/**
 * Makes Cloudflare match `news` starting from `olds` (the stored outputs, `{}` on create): uploads and adopts added
 * images, re-uploads those whose source hash changed, PATCHes metadata, then deletes removed ones it still owns.
 */
async function syncBatch(id: string, olds: Record<string, unknown>, news: Record<string, unknown>, creating: boolean) {
    const inputs = parseBatchInputs(news);
    const stored = olds as unknown as BatchOutputs;
    const oldImages: Record<string, StoredBatchImage> = stored.images ?? {};
    for (const imageId of Object.keys(inputs.images)) claimImage(imageId, inputs.owner);
    const plan = planBatch(olds, news);
    const api = client(inputs.accountId, resolveApiToken(inputs.apiToken, settings, process.env), inputs.apiBaseUrl);
    const concurrency = inputs.concurrency ?? DEFAULT_BATCH_CONCURRENCY;
    const images: Record<string, StoredBatchImage> = {};
    for (const imageId of plan.unchanged) images[imageId] = oldImages[imageId]!;
    const reasons: string[] = [];
    let template = stored.deliveryUrlTemplate;
    const fail = (imageId: string, e: unknown) => reasons.push(`image ${imageId}: ${clean(news, (e as Error).message ?? String(e))}`);

    const work = [...plan.add.map((i) => ["add", i] as const), ...plan.reupload.map((i) => ["reupload", i] as const),
        ...plan.patch.map((i) => ["patch", i] as const)];
    const progress = startProgress(inputs.owner, "writing", work.length + plan.remove.length);
    try {
        await forEachConcurrently(work, concurrency, async ([kind, imageId]) => {
            const image = imageInputsOf(inputs, imageId);
            const entry = inputs.images[imageId]!;
            let oldGone = kind !== "reupload";
            try {
                if (kind === "patch") {
                    await api.update(imageId, { metadata: wantedMetadata(image), requireSignedURLs: image.requireSignedURLs ?? false });
                    images[imageId] = storedImage(entry, oldImages[imageId]?.adopted === true);
                    return;
                }
                if (kind === "reupload") {
                    // Other bytes under the same custom ID: ours goes first (it is gone if the upload then fails).
                    if ((await deleteIfOwned(api, imageId, inputs.owner)) === "kept") {
                        throw new Error(`another resource took this custom ID over; it was not replaced`);
                    }
                    oldGone = true;
                }
                const { image: uploaded, adopted } = await uploadOrAdopt(api, image, settings.aws);
                template ??= deliveryUrlTemplate(imageId, uploaded.variants);
                images[imageId] = storedImage(entry, adopted);
            } catch (e) {
                // Still the old image in Cloudflare: keep its entry, so the next up retries the PATCH or the re-upload.
                if (!oldGone) images[imageId] = oldImages[imageId]!;
                fail(imageId, e);
            } finally {
                progress.step();
            }
        });
        // Removals last, after this batch's own claims; images another resource claims or tagged are only forgotten.
        const removeApi = (call: (c: ImagesClient) => Promise<void>) =>
            stored.accountId !== undefined && stored.accountId !== inputs.accountId ? withStoredToken(stored, call) : call(api);
        await removeApi(async (c) => {
            const known = await fetchImages(c, plan.remove, concurrency);
            await forEachConcurrently(plan.remove, concurrency, async (imageId) => {
                try {
                    await deleteIfOwned(c, imageId, stored.owner ?? inputs.owner, known.get(imageId));
                } catch (e) {
                    images[imageId] = oldImages[imageId]!; // still ours in Cloudflare: the next up deletes it
                    fail(imageId, e);
                } finally {
                    progress.step();
                }
            });
        }).catch((e) => {
            for (const imageId of plan.remove) images[imageId] ??= oldImages[imageId]!;
            reasons.push(`removing ${plan.remove.length} images: ${clean(news, (e as Error).message)}`);
        });
    } finally {
        progress.stop();
    }
    const outs: BatchOutputs = dropUndefined({
        accountId: inputs.accountId, owner: inputs.owner, apiToken: inputs.apiToken, apiBaseUrl: inputs.apiBaseUrl,
        onConflict: inputs.onConflict, s3: inputs.s3, deliveryUrlTemplate: template, images: sortedKeys(images),
    });
    if (reasons.length > 0) {
        const landed = Object.keys(images).length;
        if (creating && landed === 0) throw new Error(`no image of the batch landed:\n${reasons.join("\n")}`);
        throw partialFailure(id, outs, news.__provider, reasons, work.length + plan.remove.length);
    }
    return outs;
}

function sortedKeys<T>(record: Record<string, T>): Record<string, T> {
    return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Rethrows with every known secret removed from the message, keeping a partial failure's id/properties/reasons. */
async function guarded<T>(props: Record<string, unknown> | undefined, work: () => Promise<T>): Promise<T> {
    try {
        return await work();
    } catch (e) {
        const err = e as Error & { id?: string };
        if (err.id) throw e;
        throw new Error(clean(props, err.message ?? String(e)));
    }
}

/** The implementation behind the serialized shim: CloudflareImageBatch's CRUD, one image at a time as CloudflareImage. */
export const provider: pulumi.dynamic.ResourceProvider = {
    async configure(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
        settings = readProviderSettings(req.config as ConfigSource);
    },

    async check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
        const failures = checkBatchInputs(news);
        if (typeof news.owner === "string" && news.images && typeof news.images === "object") {
            for (const id of Object.keys(news.images)) claimImage(id, news.owner);
        }
        const inputs = Object.fromEntries(Object.entries(news).filter(([k, v]) => k !== "__provider" && v !== undefined));
        return { inputs, failures };
    },

    async diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.DiffResult> {
        // Never a replacement: that would delete and upload every image again. Per-image work is update()'s.
        return { changes: planHasChanges(planBatch(olds, news)) };
    },

    async create(props: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
        return guarded(props, async () => {
            const owner = String(props.owner);
            return { id: owner, outs: await syncBatch(owner, {}, props, true) };
        });
    },

    async update(id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.UpdateResult> {
        return guarded(news, async () => ({ outs: await syncBatch(id, olds, news, false) }));
    },

    async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
        return guarded(props, async () => {
            const stored = props as unknown as BatchOutputs;
            const ids = Object.keys(stored.images ?? {});
            const found = await withStoredToken(stored, (api) => fetchImages(api, ids, DEFAULT_BATCH_CONCURRENCY));
            // Missing images leave the outputs and changed hashes are recorded: the next up re-uploads only those.
            const images: Record<string, StoredBatchImage> = {};
            for (const imageId of ids) {
                const image = found.get(imageId);
                if (image) images[imageId] = storedFromCloudflare(image, stored.images[imageId]!);
            }
            return { id, props: { ...props, images } };
        });
    },

    async delete(_id: string, props: Record<string, unknown>): Promise<void> {
        await guarded(props, async () => {
            const stored = props as unknown as BatchOutputs;
            const ids = Object.keys(stored.images ?? {});
            const reasons: string[] = [];
            const progress = startProgress(stored.owner, "deleting", ids.length);
            try {
                await withStoredToken(stored, async (api) => {
                    // Deletes of removed resources run after every create and update (docs/engine-findings): the
                    // owner tags read here already name any batch or image that took an image over.
                    const known = await fetchImages(api, ids, DEFAULT_BATCH_CONCURRENCY);
                    await forEachConcurrently(ids, DEFAULT_BATCH_CONCURRENCY, async (imageId) => {
                        try {
                            await deleteIfOwned(api, imageId, stored.owner, known.get(imageId));
                        } catch (e) {
                            reasons.push(`image ${imageId}: ${(e as Error).message}`);
                        } finally {
                            progress.step();
                        }
                    });
                });
            } finally {
                progress.stop();
            }
            if (reasons.length > 0) {
                throw new Error(`${reasons.length} of ${ids.length} images could not be deleted (the batch stays in state; ` +
                    `run destroy again):\n${reasons.slice(0, 50).join("\n")}`);
            }
        });
    },
};
