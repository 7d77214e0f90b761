// The pre-flight's read-only calls: the token, the account's allowance and images, a sample of every URL source.
import { CloudflareApiError } from "../../provider/errors";
import { CloudflareApi, DEFAULT_API_BASE_URL } from "../../provider/http";
import { ImagesClient } from "../../provider/images-client";
import type { RateBudget } from "../../provider/rate-limiter";
import { unpackMetadata } from "../../provider/source-metadata";
import { isTokenRefused, TokensClient, type TokenStatus } from "../../provider/tokens-client";
import { assess, SAMPLE_LIST_LIMIT, spreadSample, type AccountImages, type Assessment, type PreflightMode, type SetPlan, type SourceCheck } from "./assess";
import { probeSources, type ProbeAnswer } from "./source-probe";

/** Fewer attempts than a migration's requests: a preview that cannot reach Cloudflare should say so in seconds. */
const PREFLIGHT_ATTEMPTS = 3;
const PREFLIGHT_MAX_DELAY_MS = 4_000;
/** Per attempt, unless sourcing-kit:requestTimeoutMs says otherwise: an unreachable API fails the preview in under a minute. */
const PREFLIGHT_TIMEOUT_MS = 15_000;
const LIST_PAGE = 10_000;
const FALLBACK_PAGE = 1_000;

export interface PreflightOptions {
    mode: Exclude<PreflightMode, "off">;
    token: string;
    /** Where the token came from, for messages: `cloudflare:apiToken` or `CLOUDFLARE_API_TOKEN`. */
    tokenSource: string;
    accountId: string;
    apiBaseUrl?: string;
    useBatchApi: boolean;
    /** With a scoped token the bootstrap token must create tokens, and need not read Images. */
    scopedToken: boolean;
    rateLimit: RateBudget;
    requestTimeoutMs?: number;
    /** Source URLs probed per set (0: none). */
    sourceChecks: number;
    /** How many of the account's images `sample` mode lists at most; default SAMPLE_LIST_LIMIT (100,000). */
    sampleListLimit?: number;
    /** For tests: replaces the HTTP probe of source URLs. */
    probe?: (url: string) => Promise<ProbeAnswer>;
}

/** Runs every check, then judges (pure `assess`). Never throws for what it finds: problems are in the result. */
export async function runPreflight(opts: PreflightOptions, sets: readonly SetPlan[]): Promise<Assessment> {
    const problems: string[] = [];
    const warnings: string[] = [];
    const base = opts.apiBaseUrl ?? DEFAULT_API_BASE_URL;
    const client = {
        apiToken: opts.token, apiBaseUrl: base, rateLimit: opts.rateLimit, maxAttempts: PREFLIGHT_ATTEMPTS,
        maxDelayMs: PREFLIGHT_MAX_DELAY_MS, timeoutMs: opts.requestTimeoutMs ?? PREFLIGHT_TIMEOUT_MS,
    };
    const api = new CloudflareApi(client);
    const unreachable = (e: unknown) => `sourcing-kit:preflight: cannot reach ${base} (${describe(e)}): check the network ` +
        `and sourcing-kit:apiBaseUrl, or set sourcing-kit:preflight off to preview without the pre-flight checks`;

    const sourcesDone = checkSources(opts, sets);
    const account = await (async (): Promise<AccountImages | undefined> => {
        // 1. The token: valid, active, and (for the scoped-token path) allowed to create tokens.
        let token: TokenStatus;
        try {
            token = await new TokensClient(api, opts.accountId).verify();
        } catch (e) {
            if (isTokenRefused(e)) {
                problems.push(`${opts.tokenSource}: Cloudflare does not accept this token (${describe(e)}): ` +
                    `set a valid one with pulumi config set --secret cloudflare:apiToken <token>`);
            } else problems.push(unreachable(e));
            return undefined;
        }
        if (token.status !== "active") {
            problems.push(`${opts.tokenSource}: the token is ${token.status}: set an active one with pulumi config set --secret cloudflare:apiToken <token>`);
            return undefined;
        }
        if (opts.scopedToken) {
            try {
                await new TokensClient(api, opts.accountId).permissionGroups(token.owner);
            } catch (e) {
                if (!isTokenRefused(e)) throw e;
                problems.push(`${opts.tokenSource}: with sourcing-kit:scopedToken true (the default) this token creates the migration's ` +
                    `API token, but it may not manage API tokens (${describe(e)}): give it ${token.owner === "user" ? "User > API Tokens > Edit" : "Account > Account API Tokens > Edit"}, ` +
                    `or set sourcing-kit:scopedToken false to migrate with this token itself`);
            }
        }

        // 2. The allowance, then the account's images (newest first, bounded in `sample` mode).
        const images = new ImagesClient({ ...client, accountId: opts.accountId, useBatchApi: opts.useBatchApi });
        try {
            const stats = await images.stats();
            const limit = opts.mode === "full" ? Infinity : (opts.sampleListLimit ?? SAMPLE_LIST_LIMIT);
            const byId = await listAccount(images, limit);
            return { byId, current: stats.current, allowed: stats.allowed, complete: byId.size < limit || byId.size >= stats.current };
        } catch (e) {
            if (!isTokenRefused(e)) throw e;
            if (opts.scopedToken) {
                warnings.push(`pre-flight: ${opts.tokenSource} cannot read Cloudflare Images on account ${opts.accountId} (${describe(e)}), so the ` +
                    `allowance and existing images were not checked; the scoped token gets Images Write. Give the bootstrap token Images Read to have them checked`);
            } else {
                problems.push(`${opts.tokenSource}: the token cannot use Cloudflare Images on account ${opts.accountId} (${describe(e)}): ` +
                    `give it Account > Cloudflare Images > Edit (Images Write), or check sourcing-kit:accountId`);
            }
            return undefined;
        }
    })().catch((e: unknown) => {
        problems.push(unreachable(e));
        return undefined;
    });
    const sources = await sourcesDone;
    return assess({ mode: opts.mode, sets, account, sources, problems, warnings });
}

/** Lists the account newest first up to `limit` images: custom ID -> recorded source hash (null: not ours). */
async function listAccount(images: ImagesClient, limit: number, perPage = LIST_PAGE): Promise<Map<string, string | null>> {
    const byId = new Map<string, string | null>();
    try {
        for await (const image of images.list({ perPage, sortOrder: "desc" })) {
            byId.set(image.id, unpackMetadata(image.meta).sourceHash ?? null);
            if (byId.size >= limit) break;
        }
    } catch (e) {
        // Cloudflare's reference says both "up to 10,000" and "up to 1,000 per page": fall back to the smaller.
        if (e instanceof CloudflareApiError && e.status === 400 && byId.size === 0 && perPage > FALLBACK_PAGE) {
            return listAccount(images, limit, FALLBACK_PAGE);
        }
        throw e;
    }
    return byId;
}

/** A sample of each set's http(s) source URLs, spread over the plan. */
async function checkSources(opts: PreflightOptions, sets: readonly SetPlan[]): Promise<Map<string, SourceCheck>> {
    const out = new Map<string, SourceCheck>();
    await Promise.all(sets.map(async (set) => {
        const urls = set.images.map((i) => i.url).filter((u): u is string => u !== undefined && /^https?:\/\//i.test(u));
        const sample = spreadSample(urls.length, opts.sourceChecks).map((i) => urls[i]!);
        out.set(set.configPath, sample.length > 0 ? await probeSources(sample, opts.probe) : { checked: 0, failures: [] });
    }));
    return out;
}

function describe(e: unknown): string {
    if (e instanceof CloudflareApiError) {
        const items = e.errors.map((i) => `code ${i.code}: ${i.message}`).join("; ");
        return [e.status !== undefined ? `HTTP ${e.status}` : undefined, items || undefined, e.networkCode].filter(Boolean).join(", ") || e.message;
    }
    return e instanceof Error ? e.message : String(e);
}
