import { z } from "zod";
import { CloudflareApiError } from "./errors";

/** What a dynamic provider's configure() receives: the stack config, by full key ("cloudflare:apiToken"). */
export interface ConfigSource {
    get(key: string): string | undefined;
}

export interface AwsSettings {
    accessKey?: string;
    secretKey?: string;
    token?: string;
    region?: string;
}

/** Provider-wide settings from the stack config; inputs of a resource win over them. */
export interface ProviderSettings {
    apiToken?: string;
    apiBaseUrl?: string;
    rateLimit?: { requests: number; windowSeconds: number };
    useBatchApi?: boolean;
    /** Milliseconds before one API request is abandoned and retried; default: the client's (30 s, uploads 60 s). */
    requestTimeoutMs?: number;
    aws: AwsSettings;
}

/** `sourcing-kit:rateLimit`: validated by the program (config.ts) with every other key, read again by the providers. */
export const RateLimitSchema = z.strictObject({
    requests: z.number().int().positive(),
    windowSeconds: z.number().int().positive(),
});

function parseRateLimit(text: string): ProviderSettings["rateLimit"] {
    let raw: unknown;
    try {
        raw = JSON.parse(text);
    } catch {
        raw = undefined;
    }
    const parsed = RateLimitSchema.safeParse(raw);
    if (!parsed.success) {
        throw new Error(`sourcing-kit:rateLimit must be JSON like {"requests":1100,"windowSeconds":300} ` +
            `(pulumi config set --path sourcing-kit:rateLimit.requests 1100)`);
    }
    return parsed.data;
}

function parseBoolean(key: string, text: string): boolean {
    if (text === "true" || text === "false") return text === "true";
    throw new Error(`${key} must be true or false (got "${text}"): pulumi config set ${key} true`);
}

function parseTimeoutMs(key: string, text: string): number {
    if (/^[1-9]\d*$/.test(text.trim())) return Number(text.trim());
    throw new Error(`${key} must be a whole number of milliseconds (got "${text}"): pulumi config set ${key} 60000`);
}

const nonEmpty = (v: string | undefined) => (v === undefined || v === "" ? undefined : v);

/** Reads the keys the image provider understands from the config the engine hands to configure(). */
export function readProviderSettings(config: ConfigSource): ProviderSettings {
    const rateLimit = nonEmpty(config.get("sourcing-kit:rateLimit"));
    const useBatchApi = nonEmpty(config.get("sourcing-kit:useBatchApi"));
    const requestTimeoutMs = nonEmpty(config.get("sourcing-kit:requestTimeoutMs"));
    return {
        apiToken: nonEmpty(config.get("cloudflare:apiToken")),
        apiBaseUrl: nonEmpty(config.get("sourcing-kit:apiBaseUrl")),
        rateLimit: rateLimit === undefined ? undefined : parseRateLimit(rateLimit),
        useBatchApi: useBatchApi === undefined ? undefined : parseBoolean("sourcing-kit:useBatchApi", useBatchApi),
        requestTimeoutMs: requestTimeoutMs === undefined ? undefined : parseTimeoutMs("sourcing-kit:requestTimeoutMs", requestTimeoutMs),
        aws: {
            accessKey: nonEmpty(config.get("aws:accessKey")),
            secretKey: nonEmpty(config.get("aws:secretKey")),
            token: nonEmpty(config.get("aws:token")),
            region: nonEmpty(config.get("aws:region")),
        },
    };
}

/** The token a call uses: the resource's input, else `cloudflare:apiToken`, else `CLOUDFLARE_API_TOKEN`. */
export function resolveApiToken(input: string | undefined, settings: ProviderSettings, env: NodeJS.ProcessEnv): string {
    const token = input ?? settings.apiToken ?? nonEmpty(env.CLOUDFLARE_API_TOKEN);
    if (token === undefined) {
        throw new Error("apiToken: no Cloudflare API token: pass apiToken, set the secret cloudflare:apiToken " +
            "(pulumi config set --secret cloudflare:apiToken …) or export CLOUDFLARE_API_TOKEN");
    }
    return token;
}

/** The configured fallback token (config, then environment), used when a stored token is rejected. */
export function configuredApiToken(settings: ProviderSettings, env: NodeJS.ProcessEnv): string | undefined {
    return settings.apiToken ?? nonEmpty(env.CLOUDFLARE_API_TOKEN);
}

/** Cloudflare refused the token itself (rotated, revoked, or lacking the permission), not the request. */
export function isAuthRejection(e: unknown): boolean {
    return e instanceof CloudflareApiError && (e.status === 401 || e.status === 403 || e.hasCode(10000) || e.hasCode(9109));
}

/**
 * Runs `call` with the token stored in state, then with the configured one when Cloudflare rejects the stored one
 * (rotated or revoked since the resource was written): delete and refresh keep working after a token rotation.
 * `tokens` lists the tokens tried, for redacting messages.
 */
export async function withTokenFallback<T>(
    stored: string | undefined, settings: ProviderSettings, env: NodeJS.ProcessEnv,
    call: (token: string) => Promise<T>, tokens: string[] = [],
): Promise<T> {
    tokens.push(...new Set([stored, configuredApiToken(settings, env)].filter((t): t is string => !!t)));
    if (tokens.length === 0) resolveApiToken(undefined, settings, env);
    for (let i = 0; ; i++) {
        try {
            return await call(tokens[i]);
        } catch (e) {
            if (i + 1 >= tokens.length || !isAuthRejection(e)) throw e;
        }
    }
}
