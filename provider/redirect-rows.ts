import * as pulumi from "@pulumi/pulumi";
import { schemaVersion } from "./redirect/schema";
import { providerShim } from "./shim";

/** Inputs of one shard of redirect rows (see DESIGN.md "RedirectLayer"). */
export interface RedirectRowsArgs {
    accountId: pulumi.Input<string>;
    /** The D1 database UUID (`cloudflare.D1Database.uuid`). */
    databaseId: pulumi.Input<string>;
    /** The shard's owner name, unique per database: rows are deleted only by the shard that owns them. */
    shard: pulumi.Input<string>;
    /** Normalised path (provider/redirect/paths.ts) -> delivery URL; at most 1,000 rows. */
    rows: pulumi.Input<Record<string, pulumi.Input<string>>>;
    /** Falls back to `cloudflare:apiToken`, then `CLOUDFLARE_API_TOKEN`; always stored as a secret. */
    apiToken?: pulumi.Input<string>;
    apiBaseUrl?: pulumi.Input<string>;
}

export const REDIRECT_ROWS_SECRET_OUTPUTS = ["apiToken"];

// One shim for every shard: Pulumi caches the serialized text per provider object.
const provider = providerShim("redirect-rows-provider");

/** A shard of `old path -> delivery URL` rows in the redirect table, written through the D1 HTTP API. */
export class RedirectRows extends pulumi.dynamic.Resource {
    declare readonly shard: pulumi.Output<string>;
    declare readonly rows: pulumi.Output<Record<string, string>>;
    declare readonly rowCount: pulumi.Output<number>;

    constructor(name: string, args: RedirectRowsArgs, opts?: pulumi.CustomResourceOptions) {
        const props = {
            ...args,
            apiToken: args.apiToken === undefined ? undefined : pulumi.secret(args.apiToken),
            // A new schema.sql (e.g. a table added in an upgrade) is an update that applies it, rows or not.
            schemaVersion: schemaVersion(),
            rowCount: undefined,
        };
        const additionalSecretOutputs = [...new Set([...(opts?.additionalSecretOutputs ?? []), ...REDIRECT_ROWS_SECRET_OUTPUTS])];
        super(provider, name, props, { ...opts, additionalSecretOutputs }, "sourcing-kit", "RedirectRows");
    }
}
