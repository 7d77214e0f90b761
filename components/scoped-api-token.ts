import * as pulumi from "@pulumi/pulumi";
import * as cloudflare from "@pulumi/cloudflare";

/** Resource scope of account-level permission groups (Cloudflare API docs: "Create tokens via API", resource keys). */
export const ACCOUNT_SCOPE = "com.cloudflare.api.account";

export interface PermissionGroup {
    id: string;
    name: string;
    scopes?: string[];
}

/** A permission the migration needs, and how to find its group among those the bootstrap token can see. */
export interface PermissionNeed {
    /** The name a user looks for in the dashboard, used in errors. */
    label: string;
    scope: string;
    /** Server-side name filter; only where the exact group name is confirmed. */
    lookupName?: string;
    /** Exact names accepted first, in order. */
    names: string[];
    /** Fallback match when no exact name is found (the Images group's exact name is unconfirmed). */
    pattern?: (name: string) => boolean;
    /** What the permission is for, in errors. */
    purpose: string;
}

export const IMAGES_WRITE: PermissionNeed = {
    label: "Images Write",
    scope: ACCOUNT_SCOPE,
    names: ["Images Write", "Cloudflare Images Write", "Images Edit", "Cloudflare Images Edit"],
    pattern: (name) => /images/i.test(name) && /\b(write|edit)\b/i.test(name) && !/read/i.test(name),
    purpose: "uploading, updating and deleting the migrated images",
};

export const D1_WRITE: PermissionNeed = {
    label: "D1 Write",
    scope: ACCOUNT_SCOPE,
    lookupName: "D1 Write",
    names: ["D1 Write", "D1 Edit"],
    purpose: "writing the redirect rows into D1",
};

/**
 * Picks the group for `need` out of a permission-group listing, or throws an error that names the missing
 * group and the fix. Pure, so the matching rules are tested without an engine.
 */
export function pickPermissionGroup(need: PermissionNeed, groups: readonly PermissionGroup[]): PermissionGroup {
    const inScope = groups.filter((g) => g.scopes === undefined || g.scopes.length === 0 || g.scopes.includes(need.scope));
    for (const name of need.names) {
        const exact = inScope.find((g) => g.name === name);
        if (exact) return exact;
    }
    const candidates = need.pattern ? inScope.filter((g) => need.pattern!(g.name)) : [];
    if (candidates.length === 1) return candidates[0]!;
    if (candidates.length > 1) {
        throw new Error(
            `ScopedApiToken: permission group "${need.label}" (scope ${need.scope}) is ambiguous: ` +
            `${candidates.map((g) => `"${g.name}"`).join(", ")} all match; ` +
            `report the names in an issue, or set sourcing-kit:scopedToken false to use the bootstrap token`,
        );
    }
    throw new Error(
        `ScopedApiToken: permission group "${need.label}" (scope ${need.scope}), needed for ${need.purpose}, ` +
        `is not visible to the bootstrap token (cloudflare:apiToken): ${inScope.length} group(s) listed for that scope. ` +
        `Give the bootstrap token the "API Tokens Write" permission (dashboard > My Profile > API Tokens > ` +
        `"Create Additional Tokens" template), check that the product is enabled on the account, ` +
        `or set sourcing-kit:scopedToken false`,
    );
}

/** `{"com.cloudflare.api.account.<id>": "*"}`: every resource of one account, and nothing else. */
export function accountResources(accountId: string): string {
    return JSON.stringify({ [`${ACCOUNT_SCOPE}.${accountId}`]: "*" });
}

export interface ScopedApiTokenArgs {
    accountId: pulumi.Input<string>;
    /** Token name shown in the dashboard (at most 120 characters). */
    tokenName: string;
    /** Add D1 write (the redirect rows); leave out when the stack has no redirects. */
    d1Write: boolean;
    /** UTC timestamp after which the token stops working, e.g. 2027-01-31T00:00:00Z. */
    expiresOn?: string;
    /** CIDRs the token may be used from. */
    allowedIps?: string[];
}

/**
 * The least-privilege API token the migration runs with: Images write on the account, plus D1 write when
 * redirect rows are written. The bootstrap token in `cloudflare:apiToken` only needs to create tokens, D1
 * and Workers.
 */
export class ScopedApiToken extends pulumi.ComponentResource {
    /** The token's ID (safe to show). */
    readonly tokenId: pulumi.Output<string>;
    /** The token's secret value, for the image and row resources and the Worker's secret binding. */
    readonly value: pulumi.Output<string>;

    constructor(name: string, args: ScopedApiTokenArgs, opts?: pulumi.ComponentResourceOptions) {
        super("sourcing-kit:index:ScopedApiToken", name, {}, opts);
        if (args.tokenName.length === 0 || args.tokenName.length > 120) {
            throw new Error(`ScopedApiToken ${name}: tokenName must be 1-120 characters (got ${args.tokenName.length})`);
        }

        // Permission group IDs are looked up at run time: only the names are stable across accounts.
        const needs = [IMAGES_WRITE, ...(args.d1Write ? [D1_WRITE] : [])];
        const permissionGroups = needs.map((need) =>
            cloudflare
                .getApiTokenPermissionGroupsListOutput(
                    {
                        scope: encodeURIComponent(need.scope),
                        ...(need.lookupName ? { name: encodeURIComponent(need.lookupName) } : {}),
                    },
                    { parent: this },
                )
                .apply((listing) => ({ id: pickPermissionGroup(need, listing.results ?? []).id })),
        );

        const token = new cloudflare.ApiToken(
            name,
            {
                name: args.tokenName,
                policies: [{
                    effect: "allow",
                    resources: pulumi.output(args.accountId).apply(accountResources),
                    permissionGroups,
                }],
                ...(args.expiresOn ? { expiresOn: args.expiresOn } : {}),
                ...(args.allowedIps && args.allowedIps.length > 0 ? { condition: { requestIp: { ins: args.allowedIps } } } : {}),
            },
            { parent: this, additionalSecretOutputs: ["value"] },
        );

        this.tokenId = token.id;
        this.value = pulumi.secret(token.value);
        this.registerOutputs({ tokenId: this.tokenId });
    }
}
