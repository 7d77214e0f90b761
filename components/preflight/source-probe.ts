import axios from "axios";
import type { Readable } from "stream";
import { retryDelayMs } from "../../provider/backoff";
import { forEachConcurrently } from "../../provider/pool";
import { ACCEPTED_IMAGE_TYPES, MAX_IMAGE_BYTES, SNIFF_BYTES, sniffImageType } from "../../provider/image-format";
import { printableUrl, type SourceFailure } from "./assess";

export const PROBE_TIMEOUT_MS = 10_000;
const PROBE_CONCURRENCY = 8;
const PROBE_ATTEMPTS = 2;

/** What a ranged GET of a source URL showed. */
export interface ProbeAnswer {
    status?: number;
    contentType?: string;
    /** The whole object's size, from Content-Range (206) or Content-Length (200). */
    size?: number;
    head?: Uint8Array;
    /** A network failure instead of an answer: "ECONNREFUSED", "timed out after 10 s". */
    networkError?: string;
}

/** Pure: why Cloudflare could not import the object behind this answer, or undefined when it looks importable. */
export function probeFailure(answer: ProbeAnswer): string | undefined {
    if (answer.networkError !== undefined) return `network error ${answer.networkError}`;
    const status = answer.status ?? 0;
    if (status < 200 || status >= 300) return `HTTP ${status}`;
    if (answer.size !== undefined && answer.size > MAX_IMAGE_BYTES) {
        return `${(answer.size / (1024 * 1024)).toFixed(1)} MB, over the 10 MB upload limit`;
    }
    const sniffed = answer.head && answer.head.length > 0 ? sniffImageType(answer.head) : undefined;
    if (sniffed !== undefined) return ACCEPTED_IMAGE_TYPES.has(sniffed) ? undefined : `unsupported format ${sniffed}`;
    const type = answer.contentType?.split(";")[0]?.trim().toLowerCase();
    if (answer.head && answer.head.length > 0) return `not an image${type ? ` (${type})` : ""}`;
    return type && !type.startsWith("image/") ? `not an image (${type})` : undefined;
}

/** Pure: the total size in a `Content-Range: bytes 0-4095/123456` header. */
export function rangeTotal(header: string | undefined): number | undefined {
    const m = /\/(\d+)\s*$/.exec(header ?? "");
    return m ? Number(m[1]) : undefined;
}

/** One ranged GET for the first bytes (a server that ignores Range sends it all: only the first bytes are read). */
export async function probeUrl(url: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeAnswer> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
        const res = await axios.get<Readable>(url, {
            responseType: "stream", signal: controller.signal, validateStatus: () => true, maxRedirects: 5,
            headers: { Range: `bytes=0-${SNIFF_BYTES - 1}`, "User-Agent": "sourcing-kit pre-flight" },
        });
        const headers = res.headers as Record<string, string | undefined>;
        const size = res.status === 206 ? rangeTotal(headers["content-range"])
            : headers["content-length"] !== undefined ? Number(headers["content-length"]) : undefined;
        const head = res.status >= 200 && res.status < 300 ? await firstBytes(res.data, SNIFF_BYTES) : undefined;
        res.data.destroy();
        return { status: res.status, contentType: headers["content-type"], ...(size !== undefined && !Number.isNaN(size) ? { size } : {}), ...(head ? { head } : {}) };
    } catch (e) {
        if (controller.signal.aborted) return { networkError: `timed out after ${Math.round(timeoutMs / 1000)} s` };
        const code = (e as { code?: unknown }).code;
        return { networkError: typeof code === "string" ? code : "request failed" };
    } finally {
        clearTimeout(timer);
    }
}

async function firstBytes(stream: Readable, count: number): Promise<Uint8Array> {
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of stream) {
        chunks.push(chunk as Buffer);
        length += (chunk as Buffer).length;
        if (length >= count) break;
    }
    return Buffer.concat(chunks).subarray(0, count);
}

/** Probes the URLs (a few at a time, one retry after a network error or 5xx); failures come back printable. */
export async function probeSources(urls: readonly string[], probe: (url: string) => Promise<ProbeAnswer> = probeUrl):
    Promise<{ checked: number; failures: SourceFailure[] }> {
    const failures: (SourceFailure | undefined)[] = new Array(urls.length);
    await forEachConcurrently(urls, PROBE_CONCURRENCY, async (url, i) => {
        let reason: string | undefined;
        for (let attempt = 1; attempt <= PROBE_ATTEMPTS; attempt++) {
            const answer = await probe(url);
            reason = probeFailure(answer);
            const transient = answer.networkError !== undefined || (answer.status ?? 0) >= 500;
            if (reason === undefined || !transient || attempt === PROBE_ATTEMPTS) break;
            await new Promise((resolve) => setTimeout(resolve, retryDelayMs(attempt - 1, { baseDelayMs: 250, maxDelayMs: 2000 }, undefined)));
        }
        if (reason !== undefined) failures[i] = { url: printableUrl(url), reason };
    });
    return { checked: urls.length, failures: failures.filter((f): f is SourceFailure => f !== undefined) };
}
