import * as pulumi from "@pulumi/pulumi";
import * as cloudflare from "@pulumi/cloudflare";
import { bundleWorker, WORKER_COMPATIBILITY_DATE, WORKER_MAIN_MODULE } from "./redirect/bundle";
import { workerVars } from "./redirect/settings";

export { WORKER_COMPATIBILITY_DATE, workerVars };
import { redirectKey } from "../provider/redirect/paths";
import { MAX_ROWS_PER_SHARD, Rows, shardOwnerName, shardRows } from "../provider/redirect/rows";
import { RedirectRows } from "../provider/redirect-rows";
import { inPartition, type Partition } from "./partition";

export type RedirectMapping = Record<string, { imageId: string; deliveryUrl: string }>;

export interface RedirectLayerArgs {
    accountId: pulumi.Input<string>;
    /**
     * Old URL (or path) -> image, one record per MigratedImageSet (`set.mapping`; with a partition the whole plan's,
     * `set.planMapping`, so old URLs shared across partitions are found before any stack writes a row).
     */
    mappings: pulumi.Input<RedirectMapping>[];
    /**
     * Write only the rows of this partition's images, under partition-qualified shard names
     * (`<name>-p3of8-rows-<label>`): the partitions' stacks share one database without touching each other's rows.
     */
    partition?: Partition;
    /** The zone of routePattern (and of customDomain, where it helps Cloudflare find the zone). */
    zoneId?: string;
    /** A Workers route in front of the old origin, e.g. "media.example.com/*". Exactly one of this and customDomain. */
    routePattern?: string;
    /** A hostname the Worker serves as its origin, e.g. "img.example.com". */
    customDomain?: string;
    /** Unmapped paths: "origin" fetches them from originUrl (transition period), "404" answers not found. */
    fallback: "origin" | "404";
    originUrl?: string;
    /** Enables signed source-change webhooks; needs apiToken (the Worker calls the Images API with it). */
    webhookSecret?: pulumi.Input<string>;
    webhookPath?: string;
    apiToken?: pulumi.Input<string>;
    apiBaseUrl?: string;
    /** Name of the D1 database the layer creates (default `<name>-redirects`); not with databaseId. */
    databaseName?: string;
    /** An existing D1 database (UUID) to write the rows into; the layer then creates none (and destroy keeps it). */
    databaseId?: pulumi.Input<string>;
    /**
     * false: declare only the rows; the team deploys the Worker itself (wrangler) from `npm run worker:export`.
     * Default true: the layer deploys the Worker and its route or custom domain.
     */
    deployWorker?: boolean;
    scriptName?: string;
    /** Rows per RedirectRows resource, at most 1,000 (default). */
    shardSize?: number;
    /** Key rows by host and path (old URLs from several hosts that share paths); default false: path only. */
    matchHost?: boolean;
    /** Carry old-CDN resize queries (imgix w/h/q/fm/fit/dpr) over to flexible variants; default false: dropped. */
    flexibleVariants?: boolean;
    /** Seconds a lookup stays in the edge cache (default 300). */
    cacheTtlSeconds?: number;
    /** Cache-Control max-age of the 301 responses, i.e. how long browsers keep them (default 86400). */
    redirectMaxAgeSeconds?: number;
}


/**
 * Normalised redirect rows from the mappings; two old URLs meeting on one key with different targets is an error.
 * With a partition, every mapping is checked and only the rows of the partition's images are kept.
 */
export function rowsFromMappings(mappings: RedirectMapping[], matchHost = false, partition?: Partition): Rows {
    const rows: Rows = {};
    const origin: Record<string, string> = {};
    const images: Record<string, string> = {};
    mappings.forEach((mapping, index) => {
        for (const [oldUrl, image] of Object.entries(mapping ?? {})) {
            const key = redirectKey(oldUrl, { matchHost });
            if (rows[key] !== undefined && rows[key] !== image.deliveryUrl) {
                throw new Error(`RedirectLayer mappings[${index}]: old URLs "${origin[key]}" and "${oldUrl}" both normalise to ` +
                    `"${key}" but point at different images (${rows[key]} vs ${image.deliveryUrl}): ` +
                    (matchHost ? "remove one of them" : "set matchHost to key rows by host, or remove one"));
            }
            rows[key] = image.deliveryUrl;
            origin[key] = oldUrl;
            images[key] = image.imageId;
        }
    });
    if (partition === undefined || partition.count === 1) return rows;
    return Object.fromEntries(Object.entries(rows).filter(([key]) => inPartition(images[key]!, partition)));
}

function validate(name: string, args: RedirectLayerArgs): void {
    const where = `RedirectLayer "${name}"`;
    if (args.databaseId !== undefined && args.databaseName !== undefined) {
        throw new Error(`${where}: databaseName names a database the layer creates; with databaseId it uses that one: set only one`);
    }
    if (args.partition !== undefined && args.partition.count > 1 && args.databaseId === undefined) {
        throw new Error(`${where}: partition ${args.partition.index} of ${args.partition.count} needs databaseId: every partition writes its rows into one existing D1 database`);
    }
    if (args.deployWorker === false) {
        const set = (["routePattern", "customDomain", "zoneId", "scriptName", "webhookSecret"] as const).filter((k) => args[k] !== undefined);
        if (set.length > 0) {
            throw new Error(`${where}: ${set.join(", ")} ha${set.length === 1 ? "s" : "ve"} no effect with deployWorker false (the Worker is deployed with wrangler); remove ${set.length === 1 ? "it" : "them"}`);
        }
    } else {
        if ((args.routePattern === undefined) === (args.customDomain === undefined)) {
            throw new Error(`${where}: set exactly one of routePattern (a route in front of the old origin) or customDomain (the Worker is the origin)`);
        }
        if (args.routePattern !== undefined && !args.zoneId) {
            throw new Error(`${where}: routePattern "${args.routePattern}" needs zoneId (the zone's 32-character ID)`);
        }
    }
    if (args.fallback === "origin" && !args.originUrl) {
        throw new Error(`${where}: fallback "origin" needs originUrl (where unmapped paths are fetched), or set fallback "404"`);
    }
    if (args.webhookSecret !== undefined && args.apiToken === undefined) {
        throw new Error(`${where}: webhookSecret needs apiToken (the Worker re-imports and deletes images with it)`);
    }
    for (const key of ["cacheTtlSeconds", "redirectMaxAgeSeconds"] as const) {
        const value = args[key];
        if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
            throw new Error(`${where}: ${key} ${value} must be a whole number of seconds (0 disables it)`);
        }
    }
    if (args.shardSize !== undefined && !(Number.isInteger(args.shardSize) && args.shardSize >= 1 && args.shardSize <= MAX_ROWS_PER_SHARD)) {
        throw new Error(`${where}: shardSize ${args.shardSize} must be an integer from 1 to ${MAX_ROWS_PER_SHARD}`);
    }
}

/** Old image URLs answered with a 301 to Cloudflare Images: D1 table, sharded rows, the Worker and its route. */
export class RedirectLayer extends pulumi.ComponentResource {
    readonly databaseId: pulumi.Output<string>;
    /** The deployed Worker's name; undefined with deployWorker false. */
    readonly scriptName: pulumi.Output<string | undefined>;
    readonly hostname: pulumi.Output<string | undefined>;
    /** The Worker's plain-text settings (wrangler `vars`), for teams that deploy it themselves. */
    readonly workerVars: Record<string, string>;
    readonly rowCount: pulumi.Output<number>;
    readonly shardCount: pulumi.Output<number>;

    constructor(name: string, args: RedirectLayerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("sourcing-kit:index:RedirectLayer", name, {}, opts);
        validate(name, args);
        const parent = { parent: this };
        const apiToken = args.apiToken === undefined ? undefined : pulumi.secret(args.apiToken);

        // 1. The D1 database holding the redirect table: an existing one, or one the layer creates.
        const databaseId: pulumi.Output<string> = args.databaseId !== undefined
            ? pulumi.output(args.databaseId)
            : new cloudflare.D1Database(`${name}-db`, {
                accountId: args.accountId,
                name: args.databaseName ?? `${name}-redirects`,
            }, parent).uuid;

        // 2. The rows, sharded by hash of path (a shard splits only when it overflows); each shard's create
        //    applies schema.sql first (CREATE ... IF NOT EXISTS), so the table exists even with no rows.
        const declareShards = (mappings: RedirectMapping[]): { resources: RedirectRows[]; rowCount: number } => {
            const allRows = rowsFromMappings(mappings, args.matchHost, args.partition);
            const shards = shardRows(allRows, args.shardSize ?? MAX_ROWS_PER_SHARD);
            const resources = [...shards].map(([prefix, rows]) => {
                const shardName = shardOwnerName(name, prefix, args.partition);
                return new RedirectRows(shardName, {
                    accountId: args.accountId, databaseId, shard: shardName, rows, apiToken, apiBaseUrl: args.apiBaseUrl,
                }, parent);
            });
            return { resources, rowCount: Object.keys(allRows).length };
        };
        // Mappings known at program time are sharded now (preview lists each shard); outputs once they resolve.
        const plain = args.mappings.every((m) => !pulumi.Output.isInstance(m) && !(m instanceof Promise));
        const declared = plain
            ? pulumi.output(declareShards(args.mappings as RedirectMapping[]))
            : pulumi.all(args.mappings).apply((m) => declareShards(m as RedirectMapping[]));
        const shards: pulumi.Output<RedirectRows[]> = declared.apply((d) => d.resources);

        // 3. The Worker (unless the team deploys it): the bundled module, its D1 binding, settings as plain_text,
        //    credentials as secret_text; then its traffic.
        this.workerVars = workerVars(args);
        const deployed = args.deployWorker === false ? undefined : this.deployWorker(name, args, databaseId, apiToken, shards);

        this.databaseId = databaseId;
        this.scriptName = deployed?.scriptName ?? pulumi.output(undefined);
        this.hostname = deployed?.hostname ?? pulumi.output(undefined);
        this.shardCount = shards.apply((s) => s.length);
        this.rowCount = declared.apply((d) => d.rowCount);
        this.registerOutputs({
            databaseId: this.databaseId, scriptName: this.scriptName, hostname: this.hostname,
            shardCount: this.shardCount, rowCount: this.rowCount,
        });
    }

    private deployWorker(name: string, args: RedirectLayerArgs, databaseId: pulumi.Output<string>,
        apiToken: pulumi.Output<string> | undefined, shards: pulumi.Output<RedirectRows[]>,
    ): { scriptName: pulumi.Output<string>; hostname: pulumi.Output<string | undefined> } {
        const parent = { parent: this };
        const plainText = (bindingName: string, text: pulumi.Input<string>) => ({ type: "plain_text", name: bindingName, text });
        const bindings: pulumi.Input<cloudflare.types.input.WorkersScriptBinding>[] = [
            { type: "d1", name: "DB", id: databaseId },
            ...Object.entries(this.workerVars).map(([varName, text]) => plainText(varName, text)),
        ];
        if (args.webhookSecret !== undefined) {
            bindings.push(
                plainText("WEBHOOK_PATH", args.webhookPath ?? "/_sourcing-kit/webhook"),
                plainText("ACCOUNT_ID", args.accountId),
                { type: "secret_text", name: "WEBHOOK_SECRET", text: pulumi.secret(args.webhookSecret) },
                { type: "secret_text", name: "IMAGES_API_TOKEN", text: apiToken! },
            );
            if (args.apiBaseUrl) bindings.push(plainText("IMAGES_API_BASE", args.apiBaseUrl));
        }
        const script = new cloudflare.WorkersScript(`${name}-worker`, {
            accountId: args.accountId,
            scriptName: args.scriptName ?? name,
            mainModule: WORKER_MAIN_MODULE,
            content: bundleWorker(),
            compatibilityDate: WORKER_COMPATIBILITY_DATE,
            bindings,
        }, { parent: this, dependsOn: shards });

        // 4. Traffic: a route on a proxied hostname (the old origin stays behind it) or a custom domain.
        let hostname: pulumi.Output<string | undefined>;
        if (args.customDomain !== undefined) {
            const domain = new cloudflare.WorkersCustomDomain(`${name}-domain`, {
                accountId: args.accountId,
                hostname: args.customDomain,
                service: script.scriptName,
                zoneId: args.zoneId,
            }, parent);
            hostname = domain.hostname;
        } else {
            new cloudflare.WorkersRoute(`${name}-route`, {
                zoneId: args.zoneId!,
                pattern: args.routePattern!,
                script: script.scriptName,
            }, parent);
            hostname = pulumi.output(args.routePattern!.split("/")[0]);
        }
        return { scriptName: script.scriptName, hostname };
    }
}
