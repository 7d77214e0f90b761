import * as fs from "fs";
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
export async function prepareSourcingKit(opts: SourcingKitRunOptions): Promise<() => Promise<ToolOutcome>> {
    const provider = await providerText();
    const host = await startProviderHost({ env: { PULUMI_PROJECT: "sourcing-kit", PULUMI_STACK: "bench" } });
    const urnOf = (imageId: string) => `urn:pulumi:bench::sourcing-kit::sourcing-kit:index:MigratedImageSet$pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage::${imageId}`;
    const inputsOf = (i: number) => {
        const imageId = `${opts.idPrefix}/img-${i}`;
        return {
            imageId,
            news: {
                __provider: provider,
                accountId: opts.accountId,
                imageId,
                url: opts.urls[i],
                sourceHash: `url:${opts.urls[i]}`,
                apiBaseUrl: opts.apiBaseUrl,
                onConflict: "adopt",
            },
        };
    };
    try {
        await host.configure({
            "cloudflare:apiToken": opts.apiToken,
            "sourcing-kit:apiBaseUrl": opts.apiBaseUrl,
            "sourcing-kit:rateLimit": JSON.stringify(opts.rateLimit),
            "sourcing-kit:useBatchApi": String(opts.useBatchApi),
        });
        // The first Check deserializes the shim and loads the implementation through ts-node (no network).
        const warm = inputsOf(0);
        await host.check(urnOf(warm.imageId), {}, warm.news);
    } catch (err) {
        await host.kill();
        throw err;
    }
    return async () => {
        try {
            const cpuBefore = cpuSecondsOf(host.process.pid);
            const outcome = await createAll(opts, (i) => {
                const { imageId, news } = inputsOf(i);
                return { urn: urnOf(imageId), news };
            }, host);
            const cpuAfter = cpuSecondsOf(host.process.pid);
            return cpuBefore !== undefined && cpuAfter !== undefined ? { ...outcome, childCpuSeconds: Math.round((cpuAfter - cpuBefore) * 10) / 10 } : outcome;
        } finally {
            await host.kill();
        }
    };
}

/** Check then Create for every image, `parallelism` at a time, as the engine steps through new resources. */
async function createAll(
    opts: SourcingKitRunOptions,
    resource: (i: number) => { urn: string; news: Record<string, unknown> },
    host: Awaited<ReturnType<typeof startProviderHost>>,
): Promise<ToolOutcome> {
    const limit = pLimit(opts.parallelism);
    let failed = 0;
    let firstError: string | undefined;
    await Promise.all(
        opts.urls.map((_, i) =>
            limit(async () => {
                const { urn, news } = resource(i);
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
}

/** User + system CPU seconds of a process (Linux /proc); undefined elsewhere. */
function cpuSecondsOf(pid: number | undefined): number | undefined {
    try {
        const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
        // After "pid (comm) ", utime and stime are the 12th and 13th fields, in clock ticks (100 per second on Linux).
        return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
        return undefined;
    }
}
