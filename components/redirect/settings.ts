// The redirect Worker's plain-text settings (wrangler `vars`), the same whether the stack deploys the Worker, a team
// deploys it with wrangler, or the local run starts it in workerd.

export interface WorkerSettings {
    /** Unmapped paths: "origin" fetches them from originUrl, "404" answers not found. */
    fallback: "origin" | "404";
    originUrl?: string;
    flexibleVariants?: boolean;
    matchHost?: boolean;
    cacheTtlSeconds?: number;
    redirectMaxAgeSeconds?: number;
}

/** Pure: the Worker's vars, defaults filled in (lookup cache 300 s, browsers keep a 301 for a day). */
export function workerVars(settings: WorkerSettings): Record<string, string> {
    return {
        FALLBACK: settings.fallback,
        FLEXIBLE_VARIANTS: String(settings.flexibleVariants ?? false),
        MATCH_HOST: String(settings.matchHost ?? false),
        CACHE_TTL: String(settings.cacheTtlSeconds ?? 300),
        REDIRECT_MAX_AGE: String(settings.redirectMaxAgeSeconds ?? 86400),
        ...(settings.originUrl ? { ORIGIN_URL: settings.originUrl } : {}),
    };
}
