import { z } from "zod";
import { CloudflareApiError } from "./errors";
import { CloudflareApi } from "./http";

const VerifySchema = z.object({ id: z.string(), status: z.string(), expires_on: z.string().nullish() });
const PermissionGroupsSchema = z.array(z.object({ id: z.string(), name: z.string() }));

export interface TokenStatus {
    id: string;
    /** "active", or what Cloudflare says instead ("disabled", "expired"). */
    status: string;
    /** Where Cloudflare knows the token: a user token or an account-owned one. */
    owner: "user" | "account";
    expiresOn?: string;
}

/** True for Cloudflare's answers that mean "this token is not valid here" (as opposed to an outage). */
export function isTokenRefused(err: unknown): boolean {
    return err instanceof CloudflareApiError && (err.status === 401 || err.status === 403 ||
        err.hasCode(1000) || err.hasCode(10000) || err.hasCode(9109));
}

/** Read-only calls about the API token itself: verify it, and whether it can manage tokens. */
export class TokensClient {
    private readonly accountPath: string;

    constructor(private readonly api: CloudflareApi, accountId: string) {
        this.accountPath = `/accounts/${encodeURIComponent(accountId)}`;
    }

    /**
     * Verifies the token as a user token, then as an account-owned token (Cloudflare verifies each kind at its own
     * path and calls the other kind invalid). Throws the last refusal when neither knows it.
     */
    async verify(): Promise<TokenStatus> {
        try {
            const r = await this.api.request({ method: "GET", path: "/user/tokens/verify", schema: VerifySchema });
            return { id: r.id, status: r.status, owner: "user", ...(r.expires_on ? { expiresOn: r.expires_on } : {}) };
        } catch (userError) {
            if (!isTokenRefused(userError)) throw userError;
            const r = await this.api.request({ method: "GET", path: `${this.accountPath}/tokens/verify`, schema: VerifySchema });
            return { id: r.id, status: r.status, owner: "account", ...(r.expires_on ? { expiresOn: r.expires_on } : {}) };
        }
    }

    /** Lists permission groups where a token of this owner creates tokens: refused unless it may manage API tokens. */
    async permissionGroups(owner: "user" | "account"): Promise<{ id: string; name: string }[]> {
        const path = owner === "user" ? "/user/tokens/permission_groups" : `${this.accountPath}/tokens/permission_groups`;
        return this.api.request({ method: "GET", path, schema: PermissionGroupsSchema });
    }
}
