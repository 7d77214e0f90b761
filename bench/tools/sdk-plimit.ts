import Cloudflare from "cloudflare";
import pLimit from "p-limit";
import type { ToolOutcome } from "./seed-script";

/**
 * The official `cloudflare` SDK as its README shows it (default retries: 2, honouring Retry-After), fanned out
 * with `p-limit(10)`: what a user reaches for after the seed script. Uploads by URL without custom ids.
 */
export async function runSdkPLimit(opts: { apiBaseUrl: string; accountId: string; apiToken: string; urls: string[] }): Promise<ToolOutcome> {
    const client = new Cloudflare({ apiToken: opts.apiToken, baseURL: opts.apiBaseUrl });
    const limit = pLimit(10);
    const results = await Promise.all(
        opts.urls.map((url) =>
            limit(() =>
                client.images.v1.create({ account_id: opts.accountId, url }).then(
                    () => true,
                    () => false,
                ),
            ),
        ),
    );
    return { failed: results.filter((ok) => !ok).length };
}
