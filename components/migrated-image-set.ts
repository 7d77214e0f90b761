import * as pulumi from "@pulumi/pulumi";
import { CloudflareImage, CloudflareImageArgs, deliveryUrlFor } from "../provider/image";
import { CloudflareImageBatch, type CloudflareImageBatchEntry } from "../provider/image-batch";
import { shardByHash, shardLabel } from "../provider/hash-shards";

/** Images per CloudflareImageBatch unless the set says otherwise, and the most a batch may hold. */
export const DEFAULT_BATCH_SIZE = 1000;
export const MAX_BATCH_SIZE = 5000;
import { CustomIdClaims } from "./custom-id-claims";
import { isValidImageId } from "./image-id";
import { ImageMapping, ImagePlan, ImagePlanner, SKIP_REASONS } from "./image-plan";
import { describePartition, type Partition } from "./partition";
import { scaleAdvice } from "./scale-advice";
import { openSource } from "./sources";
import { AwsSettings } from "./sources/s3";
import { parseSource, Source } from "./sources/schema";
import { SourceError } from "./sources/types";
import { userError } from "./user-error";

export const MIGRATED_IMAGE_SET_TYPE = "sourcing-kit:index:MigratedImageSet";

/**
 * Images declared between two turns of the event loop. Yielding lets earlier registrations move on and free their
 * transient promises: at 4,000 images under mocks peak RSS fell from about 720 MB to 480 MB. It never waits for
 * the engine, so creates still run as concurrently as Pulumi allows.
 */
const DECLARE_CHUNK = 200;

export interface MigratedImageSetArgs {
    accountId: string;
    /** The Images account hash: delivery URLs are `<deliveryBaseUrl>/<accountHash>/<id>/public`. */
    accountHash: string;
    /**
     * Where the mapping (and so the redirects) sends old URLs: https://imagedelivery.net (default) or a same-account
     * zone's `https://<zone>/cdn-cgi/imagedelivery`. Each image's own `deliveryUrl` output stays the URL Cloudflare reports.
     */
    deliveryBaseUrl?: string;
    apiToken?: pulumi.Input<string>;
    apiBaseUrl?: string;
    source: Source;
    /** A path prefix for every custom ID (`legacy` -> `legacy/<key>`). */
    idPrefix?: string;
    /** picomatch globs on source keys. */
    include?: string[];
    exclude?: string[];
    /** Migrate only the first N images (in key order): a trial run. */
    sample?: number;
    metadata?: Record<string, string>;
    onConflict?: "adopt" | "overwrite" | "fail";
    requireSignedURLs?: boolean;
    /**
     * image (default): one CloudflareImage per image, each reviewable in preview. batch: CloudflareImageBatch
     * resources of up to batchSize images (grouped by hash of custom ID, so adding images touches only the batches
     * they fall in), for libraries of 10,000 images and more. Switching modes or batch sizes regroups the images
     * without uploading or deleting any that are still planned.
     */
    mode?: "image" | "batch";
    /** Images per batch in batch mode; default 1,000. */
    batchSize?: number;
    /** Where this set sits in stack config, e.g. `sourcing-kit:sources[1]`, for error messages. */
    configPath?: string;
    /** Shared by the sets of one stack: no set declares an image until all have planned without a shared custom ID. */
    idClaims?: CustomIdClaims;
    /** Declare only this part of the plan (`sourcing-kit:partition`); the other parts are other stacks'. */
    partition?: Partition;
}

/** What the set resolved to at plan time. */
export interface MigratedImageSetData {
    planned: number;
    skipped: Record<string, number>;
    duplicates: number;
    mapping: Record<string, ImageMapping>;
    /** The whole plan's mapping, every partition's (the same as `mapping` without a partition). */
    planMapping: Record<string, ImageMapping>;
}

// Full args (source credentials, long URL lists) reach initialize() through here instead of the component's
// registered inputs, which the engine would store in state.
const pendingArgs = new WeakMap<object, { name: string; args: MigratedImageSetArgs }>();

/**
 * One source expanded into CloudflareImage resources at program time, so `pulumi preview` lists every image by
 * name; counts and the old-URL -> delivery-URL mapping are known before anything is created.
 */
export class MigratedImageSet extends pulumi.ComponentResource<MigratedImageSetData> {
    readonly planned: pulumi.Output<number>;
    /** Skipped source objects by reason (not-an-image, too-large, unsupported-format, empty, archived). */
    readonly skipped: pulumi.Output<Record<string, number>>;
    readonly duplicates: pulumi.Output<number>;
    /** Old URL or path -> { imageId, deliveryUrl } of the images this stack declares. */
    readonly mapping: pulumi.Output<Record<string, ImageMapping>>;
    /**
     * The mapping of the whole plan, every partition's: RedirectLayer checks it for old URLs that two images share
     * (two partitions' stacks must never write one row), then keeps its partition's rows.
     */
    readonly planMapping: pulumi.Output<Record<string, ImageMapping>>;

    constructor(name: string, args: MigratedImageSetArgs, opts?: pulumi.ComponentResourceOptions) {
        const inputs = { sourceKind: typeof args?.source?.kind === "string" ? args.source.kind : undefined };
        pendingArgs.set(inputs, { name, args });
        super(MIGRATED_IMAGE_SET_TYPE, name, inputs, opts);
        const data = this.getData();
        this.planned = pulumi.output(data.then((d) => d.planned));
        this.skipped = pulumi.output(data.then((d) => d.skipped));
        this.duplicates = pulumi.output(data.then((d) => d.duplicates));
        this.mapping = pulumi.output(data.then((d) => d.mapping));
        this.planMapping = pulumi.output(data.then((d) => d.planMapping));
    }

    // Called by ComponentResource's constructor; listing is async, so the images are declared here.
    protected override async initialize(inputs: pulumi.Inputs): Promise<MigratedImageSetData> {
        const pending = pendingArgs.get(inputs);
        pendingArgs.delete(inputs);
        if (!pending) throw new Error("MigratedImageSet: initialize called without its arguments");
        // The listing can take a while with no RPC in flight: keep the program from finishing meanwhile.
        const done = pulumi.runtime.rpcKeepAlive();
        try {
            return await this.expand(pending.name, pending.args);
        } catch (error) {
            pending.args.idClaims?.abandon(pending.args.configPath ?? pending.name, error as Error);
            // Configuration problems are the user's to fix: show the message, not a stack trace.
            throw error instanceof SourceError ? userError(error.message) : error;
        } finally {
            done();
        }
    }

    private async expand(name: string, args: MigratedImageSetArgs): Promise<MigratedImageSetData> {
        // 1. Validate everything before any image is declared.
        const configPath = args.configPath ?? `${name}.source`;
        const source = parseSource(args.source, configPath);
        checkSetOptions(args, configPath);

        // 2. List the source and plan: skips, duplicates, custom IDs, collisions, mapping; then this partition's part
        //    (so the claims and the pre-flight below see only the images this stack declares).
        const planner = new ImagePlanner({
            configPath,
            idPrefix: args.idPrefix,
            include: args.include,
            exclude: args.exclude,
            sample: args.sample,
            metadata: args.metadata,
            deliveryUrl: (imageId) => deliveryUrlFor(args.accountHash, imageId, "public", args.deliveryBaseUrl),
            partition: args.partition,
        });
        const aws = source.kind === "s3" ? awsSettingsFromConfig() : undefined;
        for await (const image of openSource(source, { configPath, aws }).list()) planner.add(image);
        const plan = planner.finish();
        await args.idClaims?.claim({
            configPath, name, onConflict: args.onConflict ?? "adopt", resource: this,
            images: plan.images.map((i) => ({ imageId: i.imageId, key: i.oldUrls[0] ?? i.key, sourceHash: i.sourceHash, url: i.url })),
        });

        // 3. One CloudflareImage per planned image, named after its custom ID; or the images in batches.
        if (args.mode === "batch") this.declareBatches(name, plan, args, source);
        else await this.declareImages(plan, args, source);

        // 4. Say what happened, in one line an operator can scan.
        pulumi.log.info(summaryLine(name, plan), this);
        for (const line of detailLines(name, plan, args.sample)) pulumi.log.info(line, this);
        const advice = scaleAdvice(name, plan.images.length, args.mode ?? "image", process.env);
        if (advice) pulumi.log.warn(advice, this);

        const data = {
            planned: plan.images.length, skipped: { ...plan.skipped } as Record<string, number>, duplicates: plan.duplicates,
            mapping: plan.mapping, planMapping: plan.partition?.allMapping ?? plan.mapping,
        };
        // The mapping stays a program-side output: in the component's state it would only double the checkpoint.
        this.registerOutputs({ planned: data.planned, skipped: data.skipped, duplicates: data.duplicates });
        return data;
    }

    /** Batch mode: the planned images grouped into CloudflareImageBatch resources by hash of custom ID. */
    private declareBatches(name: string, plan: ImagePlan, args: MigratedImageSetArgs, source: Source): void {
        const s3 = source.kind === "s3" ? s3Options(source) : undefined;
        const byId = new Map(plan.images.map((image) => [image.imageId, image]));
        const shards = shardByHash([...byId.keys()], args.batchSize ?? DEFAULT_BATCH_SIZE);
        for (const [prefix, ids] of shards) {
            if (ids.length === 0) continue;
            const images: Record<string, CloudflareImageBatchEntry> = {};
            for (const id of ids) {
                const image = byId.get(id)!;
                const entry: CloudflareImageBatchEntry = { sourceHash: image.sourceHash };
                if (image.url !== undefined) entry.url = image.url;
                if (image.filePath !== undefined) entry.filePath = image.filePath;
                if (image.metadata !== undefined) entry.metadata = image.metadata;
                images[id] = entry;
            }
            new CloudflareImageBatch(batchResourceName(name, prefix), {
                accountId: args.accountId,
                images,
                ...(args.apiToken !== undefined ? { apiToken: args.apiToken } : {}),
                ...(args.apiBaseUrl !== undefined ? { apiBaseUrl: args.apiBaseUrl } : {}),
                ...(args.onConflict !== undefined ? { onConflict: args.onConflict } : {}),
                ...(s3 && plan.images.some((i) => i.url?.startsWith("s3://")) ? { s3 } : {}),
            }, { parent: this });
        }
        pulumi.log.info(`${name}: ${count(plan.images.length)} images in ${count([...shards.values()].filter((ids) => ids.length > 0).length)} batches of at most ${count(args.batchSize ?? DEFAULT_BATCH_SIZE)}`, this);
    }

    private async declareImages(plan: ImagePlan, args: MigratedImageSetArgs, source: Source): Promise<void> {
        const shared: Omit<CloudflareImageArgs, "imageId" | "sourceHash"> = {
            accountId: args.accountId,
            ...(args.apiToken !== undefined ? { apiToken: args.apiToken } : {}),
            ...(args.apiBaseUrl !== undefined ? { apiBaseUrl: args.apiBaseUrl } : {}),
            ...(args.onConflict !== undefined ? { onConflict: args.onConflict } : {}),
            ...(args.requireSignedURLs !== undefined ? { requireSignedURLs: args.requireSignedURLs } : {}),
        };
        const s3 = source.kind === "s3" ? s3Options(source) : undefined;
        const images = plan.images;
        for (let start = 0; start < images.length; start += DECLARE_CHUNK) {
            // Pulumi records a stack trace on every promise it makes while registering (for leak reports only);
            // skipping them in this synchronous loop takes most of the CPU time of large sets.
            const stackTraceLimit = Error.stackTraceLimit;
            Error.stackTraceLimit = 0;
            try {
                for (const image of images.slice(start, start + DECLARE_CHUNK)) {
                    const imageArgs: CloudflareImageArgs = { ...shared, imageId: image.imageId, sourceHash: image.sourceHash };
                    if (image.url !== undefined) imageArgs.url = image.url;
                    if (image.filePath !== undefined) imageArgs.filePath = image.filePath;
                    if (image.metadata !== undefined) imageArgs.metadata = image.metadata;
                    if (s3 && image.url?.startsWith("s3://")) imageArgs.s3 = s3;
                    // Custom IDs are unique within the set and use only [A-Za-z0-9._~/-]: names are unique and readable.
                    new CloudflareImage(imageResourceName(image.imageId), imageArgs, { parent: this });
                }
            } finally {
                Error.stackTraceLimit = stackTraceLimit;
            }
            await new Promise((resolve) => setImmediate(resolve));
        }
    }
}

/** The resource name of a batch: `<set>-batch-<hash prefix>` (`<set>-batch-all` while one batch holds the set). */
export function batchResourceName(setName: string, prefix: string): string {
    return `${setName}-batch-${shardLabel(prefix)}`;
}

/** The resource name of an image in `pulumi preview`: `img-<custom id>` (the ID is unique within the set). */
export function imageResourceName(imageId: string): string {
    return `img-${imageId}`;
}

/**
 * `<name>: 1,234 planned, 12 skipped (not-an-image 10, too-large 2), 3 duplicates`; with a partition
 * `<name>: partition 2 of 8: 1,234 of 9,876 planned images, 2 skipped, 0 duplicates` (the counts are this partition's).
 */
export function summaryLine(name: string, plan: Pick<ImagePlan, "images" | "skipped" | "duplicates" | "partition">): string {
    const skippedTotal = SKIP_REASONS.reduce((sum, reason) => sum + (plan.skipped[reason] ?? 0), 0);
    const reasons = SKIP_REASONS.filter((reason) => plan.skipped[reason]).map((reason) => `${reason} ${count(plan.skipped[reason]!)}`);
    const planned = plan.partition
        ? `${describePartition(plan.partition)}: ${count(plan.images.length)} of ${count(plan.partition.allPlanned)} planned images`
        : `${count(plan.images.length)} planned`;
    return (
        `${name}: ${planned}, ${count(skippedTotal)} skipped` +
        (reasons.length > 0 ? ` (${reasons.join(", ")})` : "") +
        `, ${count(plan.duplicates)} duplicates`
    );
}

function detailLines(name: string, plan: ImagePlan, sample: number | undefined): string[] {
    const lines: string[] = [];
    const examples = SKIP_REASONS.filter((reason) => plan.skipExamples[reason]?.length).map((reason) => `${reason}: ${plan.skipExamples[reason]!.join(", ")}`);
    if (examples.length > 0) lines.push(`${name}: skipped, for example ${examples.join("; ")}`);
    if (plan.excluded > 0) lines.push(`${name}: ${count(plan.excluded)} left out by include/exclude`);
    if (sample !== undefined && plan.sampledOut > 0) lines.push(`${name}: sample ${count(sample)}: ${count(plan.sampledOut)} more images not planned`);
    return lines;
}

function count(n: number): string {
    return n.toLocaleString("en-US");
}

function checkSetOptions(args: MigratedImageSetArgs, configPath: string): void {
    const problems: string[] = [];
    if (typeof args.accountId !== "string" || args.accountId === "") problems.push(`${configPath}: accountId is required`);
    if (typeof args.accountHash !== "string" || args.accountHash === "") problems.push(`${configPath}: accountHash is required (Images dashboard > Developer Resources)`);
    if (args.mode !== undefined && args.mode !== "image" && args.mode !== "batch") {
        problems.push(`${configPath}.mode: must be image or batch (got ${JSON.stringify(args.mode)})`);
    }
    if (args.batchSize !== undefined && !(Number.isInteger(args.batchSize) && args.batchSize >= 1 && args.batchSize <= MAX_BATCH_SIZE)) {
        problems.push(`${configPath}.batchSize: must be a whole number from 1 to ${MAX_BATCH_SIZE} (got ${args.batchSize})`);
    }
    if (args.deliveryBaseUrl !== undefined && !isDeliveryBase(args.deliveryBaseUrl)) {
        problems.push(`deliveryBaseUrl: ${JSON.stringify(args.deliveryBaseUrl)} must be https://imagedelivery.net or a URL ending in /cdn-cgi/imagedelivery, without a trailing slash`);
    }
    if (args.idPrefix !== undefined && !isValidImageId(args.idPrefix.replace(/^\/+|\/+$/g, ""))) {
        problems.push(`${configPath}.idPrefix: "${args.idPrefix}" must be a path of A-Z a-z 0-9 . _ ~ - segments, such as legacy or shop/v1`);
    }
    if (args.sample !== undefined && !(Number.isInteger(args.sample) && args.sample > 0)) {
        problems.push(`${configPath}.sample: must be a positive whole number`);
    }
    if (args.requireSignedURLs === true) {
        // Said once here rather than by the provider's check for every image.
        problems.push(`${configPath}.requireSignedURLs: Cloudflare does not allow signed URLs for images with a custom ID, and every migrated image has one: remove it or set it to false`);
    }
    for (const field of ["include", "exclude"] as const) {
        const globs = args[field];
        if (globs !== undefined && !(Array.isArray(globs) && globs.every((g) => typeof g === "string" && g !== ""))) {
            problems.push(`${configPath}.${field}: must be a list of glob patterns such as "products/**/*.jpg"`);
        }
    }
    if (problems.length > 0) throw new SourceError(problems.join("\n"), configPath);
}

/** The forms Cloudflare delivers images at (and the redirect Worker recognises): imagedelivery.net or a zone's path. */
function isDeliveryBase(base: string): boolean {
    try {
        const url = new URL(base);
        if (!/^https?:$/.test(url.protocol) || url.search !== "" || url.hash !== "" || base.endsWith("/")) return false;
        return url.hostname === "imagedelivery.net" ? url.pathname === "/" : url.pathname === "/cdn-cgi/imagedelivery";
    } catch {
        return false;
    }
}

function s3Options(source: Extract<Source, { kind: "s3" }>): { region?: string; endpoint?: string; forcePathStyle?: boolean } | undefined {
    const options = {
        ...(source.region !== undefined ? { region: source.region } : {}),
        ...(source.endpoint !== undefined ? { endpoint: source.endpoint } : {}),
        ...(source.forcePathStyle !== undefined ? { forcePathStyle: source.forcePathStyle } : {}),
    };
    return Object.keys(options).length > 0 ? options : undefined;
}

// The same stack config the provider presigns with (`aws:*`); read raw, as listing needs plain values in the program.
function awsSettingsFromConfig(): AwsSettings {
    const get = (key: string) => pulumi.runtime.getConfig(`aws:${key}`) || undefined;
    return { accessKey: get("accessKey"), secretKey: get("secretKey"), token: get("token"), region: get("region") };
}
