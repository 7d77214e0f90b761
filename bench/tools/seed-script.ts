/**
 * The script a user writes without this project: upload by URL in batches of 10 with Promise.all, sleep one
 * second between batches, then one retry pass over whatever failed. Plain fetch, no custom ids (the returned id
 * is what such scripts record), no rate limiter, no backoff. With `batchBaseUrl` it follows the batch-API docs:
 * one batch token, every upload to the batch host.
 */
export interface SeedScriptOptions {
    apiBaseUrl: string;
    accountId: string;
    apiToken: string;
    urls: string[];
    batchBaseUrl?: string;
}

export interface ToolOutcome {
    failed: number;
    /** CPU seconds of the tool's own child process (the provider host), when it has one. */
    childCpuSeconds?: number;
}

export async function runSeedScript(opts: SeedScriptOptions): Promise<ToolOutcome> {
    let endpoint = `${opts.apiBaseUrl}/accounts/${opts.accountId}/images/v1`;
    let token = opts.apiToken;
    if (opts.batchBaseUrl) {
        const res = await fetch(`${opts.apiBaseUrl}/accounts/${opts.accountId}/images/v1/batch_token`, {
            headers: { authorization: `Bearer ${opts.apiToken}` },
        });
        const body = (await res.json()) as { result?: { token?: string } };
        if (!res.ok || !body.result?.token) throw new Error(`seed-script: batch_token answered HTTP ${res.status}`);
        endpoint = `${opts.batchBaseUrl}/images/v1`;
        token = body.result.token;
    }
    const upload = async (url: string): Promise<boolean> => {
        try {
            const form = new FormData();
            form.append("url", url);
            const res = await fetch(endpoint, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
            await res.arrayBuffer();
            return res.ok;
        } catch {
            return false;
        }
    };
    const pass = async (urls: string[]): Promise<string[]> => {
        const failed: string[] = [];
        for (let i = 0; i < urls.length; i += 10) {
            const batch = urls.slice(i, i + 10);
            const ok = await Promise.all(batch.map(upload));
            ok.forEach((good, j) => good || failed.push(batch[j]));
            await new Promise((r) => setTimeout(r, 1000));
        }
        return failed;
    };
    const firstFailures = await pass(opts.urls);
    const stillFailed = await pass(firstFailures);
    return { failed: stillFailed.length };
}
