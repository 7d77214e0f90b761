import pLimit from "p-limit";
import { startProviderHost } from "../../test/host/provider-host";
import { providerText } from "../provider-text";
import type { ToolOutcome } from "./seed-script";

export interface SourcingKitRunOptions {
    apiBaseUrl: string;
    accountId: string;
    apiToken: string;
    urls: string[];
    useBatchApi: boolean;
    /** sourcing-kit:rateLimit, as the stack config would hand it to the provider. */
    rateLimit: { requests: number; windowSeconds: number };
    /** Steps the engine runs at once (`pulumi up --parallel`). */
    parallelism: number;
    idPrefix: string;
}

/**
 * sourcing-kit's real path: the serialized shim loaded in the real dynamic provider host (its own process, cwd =
 * project root), configured from stack config, then Check + Create per image as the engine does for new
 * resources, `parallelism` steps at a time.
 */
export async function runSourcingKit(opts: SourcingKitRunOptions): Promise<ToolOutcome> {
    const provider = await providerText();
    const host = await startProviderHost({ env: { PULUMI_PROJECT: "sourcing-kit", PULUMI_STACK: "bench" } });
    try {
        await host.configure({
            "cloudflare:apiToken": opts.apiToken,
            "sourcing-kit:apiBaseUrl": opts.apiBaseUrl,
            "sourcing-kit:rateLimit": JSON.stringify(opts.rateLimit),
            "sourcing-kit:useBatchApi": String(opts.useBatchApi),
        });
        const limit = pLimit(opts.parallelism);
        let failed = 0;
        let firstError: string | undefined;
        await Promise.all(
            opts.urls.map((url, i) =>
                limit(async () => {
                    const imageId = `${opts.idPrefix}/img-${i}`;
                    const urn = `urn:pulumi:bench::sourcing-kit::sourcing-kit:index:MigratedImageSet$pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage::${imageId}`;
                    const news = {
                        __provider: provider,
                        accountId: opts.accountId,
                        imageId,
                        url,
                        sourceHash: `url:${url}`,
                        apiBaseUrl: opts.apiBaseUrl,
                        onConflict: "adopt",
                    };
                    try {
                        const checked = await host.check(urn, {}, news);
                        if (checked.failures.length) throw new Error(`check: ${checked.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
                        await host.create(urn, checked.inputs);
                    } catch (err) {
                        failed++;
                        firstError ??= (err as Error).message;
                    }
                }),
            ),
        );
        if (failed === opts.urls.length) throw new Error(`every create failed, first: ${firstError}`);
        return { failed };
    } finally {
        await host.kill();
    }
}
