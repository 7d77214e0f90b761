import * as pulumi from "@pulumi/pulumi";
import { loadStackConfig, PROJECT, slug, type StackConfig } from "./config";
import { ScopedApiToken } from "./components/scoped-api-token";
import { CustomIdClaims } from "./components/custom-id-claims";
import { MigratedImageSet } from "./components/migrated-image-set";
import { RedirectLayer } from "./components/redirect-layer";
import { WORKER_COMPATIBILITY_DATE, WORKER_MAIN_MODULE } from "./components/redirect/bundle";
import { trimEngineOverhead } from "./components/engine-runtime";
import { StackPreflight } from "./components/preflight";
import { userError } from "./components/user-error";
import { CloudflareImage } from "./provider/image";
import { CloudflareImageBatch } from "./provider/image-batch";

/** The SQL that reads the full old-URL -> delivery-URL mapping out of the redirect database. */
const MAPPING_QUERY = "SELECT path, location, image_id FROM redirects ORDER BY path";

/** `sourcing-kit:retainOnDelete`: `pulumi destroy` forgets the images instead of deleting them. */
const retainImages: pulumi.ResourceTransformation = (args) =>
    args.resource instanceof CloudflareImage || args.resource instanceof CloudflareImageBatch
        ? { props: args.props, opts: pulumi.mergeOptions(args.opts, { retainOnDelete: true }) }
        : undefined;

/** The stack: validated config -> ScopedApiToken -> one MigratedImageSet per source -> RedirectLayer. */
function migrate(config: StackConfig) {
    const stack = pulumi.getStack();

    // 1. The least-privilege token the images and redirect rows are written with.
    const token = config.scopedToken
        ? new ScopedApiToken("migration-token", {
            accountId: config.accountId,
            tokenName: `${PROJECT} ${stack} migration`.slice(0, 120),
            d1Write: config.redirects !== undefined,
            expiresOn: config.tokenExpiresOn,
            allowedIps: config.tokenAllowedIps,
        })
        : undefined;
    // Without a scoped token the providers fall back to cloudflare:apiToken, then CLOUDFLARE_API_TOKEN.
    const apiToken = token?.value;

    // 2. One image set per source, named from the source so reordering the list renames nothing. No set declares an
    //    image before every set has planned and no custom ID is planned by two of them.
    // Then the pre-flight (read-only calls) checks token, allowance, existing images and sample source URLs.
    const preflight = config.preflight === "off" ? undefined : new StackPreflight({
        mode: config.preflight,
        token: config.bootstrapToken,
        tokenSource: config.bootstrapTokenInConfig ? "cloudflare:apiToken" : "CLOUDFLARE_API_TOKEN",
        accountId: config.accountId,
        apiBaseUrl: config.apiBaseUrl,
        useBatchApi: config.useBatchApi,
        scopedToken: config.scopedToken,
        rateLimit: config.rateLimit,
        requestTimeoutMs: config.requestTimeoutMs,
        sourceChecks: config.preflightSourceChecks,
    });
    const idClaims = new CustomIdClaims(config.sources.length, preflight?.check);
    const sets = config.sources.map((entry) => ({
        name: entry.name,
        set: new MigratedImageSet(
            entry.name,
            {
                accountId: config.accountId,
                accountHash: config.accountHash,
                deliveryBaseUrl: config.deliveryBaseUrl,
                apiToken,
                apiBaseUrl: config.apiBaseUrl,
                source: entry.source,
                idPrefix: entry.idPrefix,
                include: entry.include,
                exclude: entry.exclude,
                sample: entry.sample,
                metadata: entry.metadata,
                onConflict: entry.onConflict,
                requireSignedURLs: entry.requireSignedURLs,
                mode: entry.mode,
                batchSize: entry.batchSize,
                configPath: entry.configPath,
                idClaims,
                partition: config.partition,
            },
            config.retainOnDelete ? { transformations: [retainImages] } : undefined,
        ),
    }));

    // 3. Old URLs answer with a 301 to the new delivery URLs.
    const redirects = config.redirects;
    // An existing database (redirects.databaseId) keeps its own name; the stack names only the one it creates.
    const databaseName = redirects && redirects.databaseId === undefined
        ? (redirects.databaseName ?? slug(`${PROJECT}-${stack}-redirects`)) : undefined;
    const layer = redirects
        ? new RedirectLayer("redirects", {
            accountId: config.accountId,
            // With a partition, the whole plan's mappings: the layer checks them all and keeps its partition's rows.
            mappings: sets.map(({ set }) => (config.partition ? set.planMapping : set.mapping)),
            partition: config.partition,
            zoneId: redirects.zoneId,
            routePattern: redirects.routePattern,
            customDomain: redirects.customDomain,
            fallback: redirects.fallback,
            originUrl: redirects.originUrl,
            webhookSecret: config.webhookSecret === undefined ? undefined : pulumi.secret(config.webhookSecret),
            webhookPath: redirects.webhookPath,
            apiToken,
            apiBaseUrl: config.apiBaseUrl,
            databaseName,
            databaseId: redirects.databaseId,
            deployWorker: redirects.deployWorker,
            scriptName: redirects.deployWorker ? (redirects.scriptName ?? slug(`${PROJECT}-${stack}-redirects`)) : undefined,
            shardSize: redirects.shardSize,
            matchHost: redirects.matchHost,
            flexibleVariants: redirects.flexibleVariants,
            cacheTtlSeconds: redirects.cacheTtlSeconds,
            redirectMaxAgeSeconds: redirects.redirectMaxAgeSeconds,
        }, { dependsOn: sets.map(({ set }) => set) })
        : undefined;

    // Stack outputs: counts and where to look, never a secret.
    const sources: Record<string, pulumi.Output<{ planned: number; skipped: Record<string, number>; duplicates: number }>> = {};
    for (const { name, set } of sets) {
        sources[name] = pulumi.all([set.planned, set.skipped, set.duplicates])
            .apply(([planned, skipped, duplicates]) => ({ planned, skipped, duplicates }));
    }
    const allMappings = pulumi.all(sets.map(({ set }) => set.mapping));
    const outputs = definedOnly({
        sources,
        partition: config.partition,
        imagesPlanned: pulumi.all(sets.map(({ set }) => set.planned)).apply((counts) => counts.reduce((a, b) => a + b, 0)),
        mappedUrls: allMappings.apply((maps) => maps.reduce((n, m) => n + Object.keys(m).length, 0)),
        tokenId: token?.tokenId,
        preflight: preflight ? pulumi.output(preflight.report) : undefined,
        redirectHostname: redirects?.deployWorker ? layer?.hostname : undefined,
        redirectDatabase: layer
            ? definedOnly({ name: databaseName, id: layer.databaseId, query: MAPPING_QUERY })
            : undefined,
        // With deployWorker false: what `npm run worker:export` (and a hand-written wrangler.toml) needs.
        redirectWorker: layer && redirects && !redirects.deployWorker
            ? { deployed: false, mainModule: WORKER_MAIN_MODULE, compatibilityDate: WORKER_COMPATIBILITY_DATE, databaseId: layer.databaseId, vars: layer.workerVars }
            : undefined,
        mapping: config.exportMapping
            ? allMappings.apply((maps) => Object.assign({}, ...maps) as Record<string, { imageId: string; deliveryUrl: string }>)
            : undefined,
    });
    return { outputs, idClaims };
}

/** The CLI warns "Undefined value (tokenId) will not show as a stack output" for each undefined key: leave them out. */
function definedOnly<T extends Record<string, unknown>>(outputs: T): Partial<T> {
    return Object.fromEntries(Object.entries(outputs).filter(([, value]) => value !== undefined)) as Partial<T>;
}

// Config is validated before anything is declared, so a bad stack fails with every problem listed at once.
export = async () => {
    trimEngineOverhead();
    const { outputs, idClaims } = migrate(loadStackConfig());
    // What stops every set (a collision, a listing, the pre-flight) fails the program here, at its top level, like a
    // config error: the CLI shows it at once (raised only inside the sets' components, it took the SDK 12 s more).
    await idClaims.ready().catch((error: Error) => {
        const message = error.message;
        throw pulumi.RunError.isInstance(error) ? error : userError(message);
    });
    return outputs;
};
