import { Miniflare } from "miniflare";
import { applyRedirectSchema, redirectWorkerScript } from "../local/redirect-worker";
import { redirectKey } from "../provider/redirect/paths";
import { batches, upsertStatements, type Rows } from "../provider/redirect/rows";
import { percentile, round, type TableRow } from "./report";
import type { SectionContext, SectionResult } from "./section";

interface D1Like {
    prepare(sql: string): { bind(...values: unknown[]): unknown };
    batch(statements: unknown[]): Promise<unknown[]>;
}

export interface RedirectFigures {
    rows: number;
    /** Distinct paths per pass (each measured cold, then cached). */
    lookups: number;
    /** Timed inside workerd (driver Worker -> service binding -> redirect Worker). */
    p50CachedMs: number;
    p99CachedMs: number;
    p50ColdMs: number;
    p99ColdMs: number;
    /** Lookups answered from where expected (x-redirect-source: d1 when cold, cache when warm). */
    coldFromD1: number;
    cachedFromCache: number;
    /** The same from Node through dispatchFetch, plus a request answered before any lookup (POST 405) in between. */
    fromNode: {
        p50CachedMs: number;
        p99CachedMs: number;
        p50ColdMs: number;
        p99ColdMs: number;
        coldFromD1: number;
        cachedFromCache: number;
        p50NoLookupMs: number;
        p99NoLookupMs: number;
    };
    loadSeconds: number;
}

const ACCOUNT_HASH = "ZWd9g1K7eljCn_KDTu_MWA";

/**
 * A second Worker that calls the redirect Worker through a service binding and times each call inside workerd
 * (workerd's clock only moves across I/O, so the resolution is a millisecond or coarser).
 */
const DRIVER_SCRIPT = `
export default {
  async fetch(request, env) {
    const urls = await request.json();
    const out = [];
    for (const url of urls) {
      const started = performance.now();
      const res = await env.REDIRECT.fetch(url, { redirect: "manual" });
      await res.arrayBuffer();
      out.push([performance.now() - started, res.status, res.headers.get("x-redirect-source")]);
    }
    return Response.json(out);
  },
};
`;

interface Sample { ms: number; status: number; source: string | null }

/**
 * Section 4: the real Worker bundle in workerd (miniflare) with a real D1 holding `rows` redirect rows written by
 * the same upsert statements RedirectRows sends; sequential GETs of distinct mapped paths, first cold (cache
 * empty: a D1 lookup) then again (Cache API hit). Timed inside workerd by a driver Worker over a service binding
 * (the figures the targets are judged on), and from Node through miniflare's dispatchFetch (one loopback HTTP hop
 * more), on two disjoint sets of paths so that every cold lookup is a first request.
 */
export async function run(ctx: SectionContext): Promise<SectionResult> {
    const rowCount = ctx.scaled(100_000);
    const lookups = Math.min(Math.floor(rowCount / 2), ctx.scaled(1_000));
    const mf = new Miniflare({
        cf: false,
        workers: [
            {
                name: "redirect",
                ...redirectWorkerScript(),
                bindings: { FALLBACK: "404" },
                d1Databases: { DB: "bench-redirects" },
            },
            {
                name: "driver",
                modules: [{ type: "ESModule", path: "driver.js", contents: DRIVER_SCRIPT }],
                compatibilityDate: "2025-01-01",
                serviceBindings: { REDIRECT: "redirect" },
            },
        ],
    });
    try {
        await mf.ready;
        const db = (await mf.getD1Database("DB", "redirect")) as unknown as D1Like;
        await applyRedirectSchema(db);

        const urlOf = (i: number) => `https://old-cdn.example.com/library/${String(i % 250).padStart(3, "0")}/photo-${i}.jpg`;
        const loadStarted = Date.now();
        const chunk = 5_000;
        for (let from = 0; from < rowCount; from += chunk) {
            const rows: Rows = {};
            for (let i = from; i < Math.min(rowCount, from + chunk); i++) {
                rows[redirectKey(urlOf(i))] = `https://imagedelivery.net/${ACCOUNT_HASH}/library/${String(i % 250).padStart(3, "0")}/photo-${i}/public`;
            }
            for (const batch of batches(upsertStatements(`bench-${from / chunk}`, rows))) {
                await db.batch(batch.map((s) => db.prepare(s.sql).bind(...s.params)));
            }
        }
        const loadSeconds = round((Date.now() - loadStarted) / 1000, 1);
        ctx.log(`redirect: ${rowCount} rows loaded in ${loadSeconds} s`);

        // Two disjoint sets of distinct paths spread over the table (even and odd picks), in a fixed shuffled order.
        const stride = rowCount / (2 * lookups);
        const picks = (offset: number) => Array.from({ length: lookups }, (_, k) => Math.floor((((k * 7919) % lookups) * 2 + offset) * stride));
        const inWorkerdUrls = picks(0).map(urlOf);
        const fromNodeUrls = picks(1).map(urlOf);

        const fromNode = async (url: string, method = "GET"): Promise<Sample> => {
            const t = process.hrtime.bigint();
            const res = await mf.dispatchFetch(url, { method, redirect: "manual" });
            await res.arrayBuffer();
            return { ms: Number(process.hrtime.bigint() - t) / 1e6, status: res.status, source: res.headers.get("x-redirect-source") };
        };
        const driver = await mf.getWorker("driver");
        const inWorkerd = async (urls: string[]): Promise<Sample[]> => {
            const res = await driver.fetch("http://driver/", { method: "POST", body: JSON.stringify(urls) });
            const rows = (await res.json()) as [number, number, string | null][];
            return rows.map(([ms, status, source]) => ({ ms, status, source }));
        };
        // Warm the isolates and the harness on paths that are not measured.
        for (let i = 0; i < 50; i++) await fromNode(`https://old-cdn.example.com/warmup/${i}.jpg`);
        await inWorkerd(Array.from({ length: 50 }, (_, i) => `https://old-cdn.example.com/warmup/${i}.jpg`));

        const settle = () => new Promise((r) => setTimeout(r, 200)); // cache.put runs in waitUntil after the answer
        const workerdCold = await inWorkerd(inWorkerdUrls);
        await settle();
        const workerdCached = await inWorkerd(inWorkerdUrls);

        // POST is answered 405 before any lookup: the round trip through the harness alone, sampled between
        // the Node-side lookups so it sees the same machine.
        const harness: number[] = [];
        const nodeCold: Sample[] = [];
        for (const url of fromNodeUrls) {
            harness.push((await fromNode(url, "POST")).ms);
            nodeCold.push(await fromNode(url));
        }
        await settle();
        const nodeCached: Sample[] = [];
        for (const url of fromNodeUrls) {
            harness.push((await fromNode(url, "POST")).ms);
            nodeCached.push(await fromNode(url));
        }

        const bad = [...workerdCold, ...nodeCold].find((s) => s.status !== 301);
        if (bad) throw new Error(`a mapped path answered ${bad.status}, expected 301`);
        const ms = (samples: Sample[], p: number) => round(percentile(samples.map((s) => s.ms), p), 2);
        const from = (samples: Sample[], source: string) => samples.filter((s) => s.source === source).length;
        const figures: RedirectFigures = {
            rows: rowCount,
            lookups,
            p50CachedMs: ms(workerdCached, 50),
            p99CachedMs: ms(workerdCached, 99),
            p50ColdMs: ms(workerdCold, 50),
            p99ColdMs: ms(workerdCold, 99),
            coldFromD1: from(workerdCold, "d1"),
            cachedFromCache: from(workerdCached, "cache"),
            fromNode: {
                p50CachedMs: ms(nodeCached, 50),
                p99CachedMs: ms(nodeCached, 99),
                p50ColdMs: ms(nodeCold, 50),
                p99ColdMs: ms(nodeCold, 99),
                coldFromD1: from(nodeCold, "d1"),
                cachedFromCache: from(nodeCached, "cache"),
                p50NoLookupMs: round(percentile(harness, 50), 2),
                p99NoLookupMs: round(percentile(harness, 99), 2),
            },
            loadSeconds,
        };
        return { json: figures, rows: tableRows(figures) };
    } finally {
        await mf.dispose();
    }
}

function tableRows(f: RedirectFigures): TableRow[] {
    const note = (n: number, what: string) => (n === f.lookups ? "" : `; only ${n}/${f.lookups} ${what}`);
    const n = f.fromNode;
    return [
        {
            section: "redirect",
            caseName: `Worker lookup, cached (${f.rows} rows)`,
            result:
                `in workerd p50 ${f.p50CachedMs} ms, p99 ${f.p99CachedMs} ms${note(f.cachedFromCache, "from cache")}; ` +
                `from Node p50 ${n.p50CachedMs}, p99 ${n.p99CachedMs} ms${note(n.cachedFromCache, "from cache")} ` +
                `(no-lookup request: p50 ${n.p50NoLookupMs}, p99 ${n.p99NoLookupMs} ms); ${f.lookups} paths each`,
            target: "p99 < 5 ms (in workerd)",
            met: f.p99CachedMs < 5 && f.cachedFromCache === f.lookups ? "yes" : "no",
        },
        {
            section: "redirect",
            caseName: `Worker lookup, cold (${f.rows} rows)`,
            result:
                `in workerd p50 ${f.p50ColdMs} ms, p99 ${f.p99ColdMs} ms${note(f.coldFromD1, "from D1")}; ` +
                `from Node p50 ${n.p50ColdMs}, p99 ${n.p99ColdMs} ms${note(n.coldFromD1, "from D1")}`,
            target: "p99 < 20 ms (in workerd)",
            met: f.p99ColdMs < 20 && f.coldFromD1 === f.lookups ? "yes" : "no",
        },
    ];
}
