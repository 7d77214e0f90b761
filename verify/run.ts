// `verify`'s checks against the live systems: Cloudflare Images (listing or per-image reads, blobs), D1 through its
// HTTP API, and the redirect Worker over HTTP. API calls go through the provider's client: its limiter and retries.
import axios from "axios";
import { createHash } from "crypto";
import { promises as fs } from "fs";
import * as path from "path";
import { D1Client } from "../provider/d1-client";
import type { RateBudget } from "../provider/http";
import { ImagesClient, type CfImage } from "../provider/images-client";
import { forEachConcurrently } from "../provider/pool";
import { imageIdOf } from "../provider/redirect/delivery-url";
import { checkAnswer, checkBytes, checkImage, checkRow, worst, type ReportLine, type Verdict } from "./checks";
import { Progress } from "./progress";
import type { StackState, StateImage, StateShard } from "./stack-state";

export interface VerifyOptions {
    state: StackState;
    /** Reads images and D1 rows (Images read and D1 read suffice). */
    apiToken: string;
    /** Where old paths are requested (`https://<redirect hostname>` or the local Worker); without it only D1 is checked. */
    workerUrl?: string;
    /** Also compare each stored original (blob) with the source's bytes: one API request per image. */
    bytes: boolean;
    /** Folder relative file sources are read from (the Pulumi project). */
    projectDir: string;
    /** The API budget; default the provider's 1,100 per 300 s. */
    rateLimit?: RateBudget;
    /** HTTP checks in flight (Worker answers, source downloads); default 16. */
    concurrency?: number;
    /** Progress lines of long phases. */
    progress: (line: string) => void;
}

export interface VerifyResult {
    /** One per redirect row, then one per image without a row. */
    lines: ReportLine[];
    images: Verdict[];
    rows: Verdict[];
    /** Each problem once, named: `image <id>: ...`, `redirect <path>: ...`. */
    problems: string[];
    /** What was not checked, and why (no Worker URL, pending operations). */
    notes: string[];
}

/** Requests per listing page: 10,000 images (the v2 maximum). */
const LIST_PAGE = 10_000;

export async function runVerify(options: VerifyOptions): Promise<VerifyResult> {
    // In custom-ID and path order, whatever order the engine recorded them in: the same stack reads the same.
    const byName = <T>(key: (item: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
    const state = {
        ...options.state,
        images: [...options.state.images].sort(byName((i) => i.imageId)),
        shards: [...options.state.shards].sort(byName((s) => s.shard)),
    };
    const concurrency = options.concurrency ?? 16;
    const notes: string[] = [];
    if (state.pending > 0) notes.push(`${state.pending} operation(s) are still pending from an interrupted update: run pulumi refresh --clear-pending-creates, then pulumi up`);

    // 1. Images: what Cloudflare has under each custom ID.
    const imageVerdicts = new Map<string, Verdict>();
    for (const images of groupBy(state.images, (i) => `${i.apiBaseUrl ?? ""} ${i.accountId}`)) {
        const client = imagesClient(options, images[0]!);
        const found = await fetchImages(client, images, options.progress);
        for (const image of images) imageVerdicts.set(image.imageId, checkImage(image.sourceHash, found.get(image.imageId)));
        if (options.bytes) {
            const progress = new Progress("verify: bytes", images.length, options.progress);
            await forEachConcurrently(images, concurrency, async (image) => {
                if (imageVerdicts.get(image.imageId)?.status === "ok") {
                    const [source, stored] = await Promise.all([sourceSha256(image, options.projectDir), client.blob(image.imageId)]);
                    imageVerdicts.set(image.imageId, checkBytes(source, stored === undefined ? undefined : sha256(stored)));
                }
                progress.tick();
            });
            progress.stop();
        }
    }

    // 2. Redirect rows: in D1 as the stack wrote them, and answered by the Worker.
    const lines: ReportLine[] = [];
    const rowVerdicts: Verdict[] = [];
    const problems: string[] = [];
    const rowsTotal = state.shards.reduce((n, s) => n + Object.keys(s.rows).length, 0);
    if (rowsTotal > 0 && options.workerUrl === undefined) {
        notes.push("the Worker's answers were not checked (no redirect hostname in the stack outputs): pass --worker-url https://<host>");
    }
    const answers = new Progress("verify: redirects", rowsTotal, options.progress);
    const imageOfRow = new Set<string>();
    for (const shard of state.shards) {
        const stored = await shardRows(options, shard);
        const entries = Object.entries(shard.rows).sort(byName(([key]) => key));
        const verdicts: Verdict[] = new Array(entries.length);
        await forEachConcurrently(entries, concurrency, async ([key, location], i) => {
            const inD1 = checkRow(location, stored.get(key));
            verdicts[i] = inD1.status !== "ok" || options.workerUrl === undefined
                ? inD1
                : checkAnswer(location, ...(await askWorker(options.workerUrl, key)));
            answers.tick();
        });
        entries.forEach(([key, location], i) => {
            const imageId = imageIdOf(location) ?? "";
            imageOfRow.add(imageId);
            const rowVerdict = verdicts[i]!;
            rowVerdicts.push(rowVerdict);
            if (rowVerdict.status !== "ok") problems.push(`redirect ${key}: ${rowVerdict.status}: ${rowVerdict.detail}`);
            const verdict = worst(rowVerdict, imageVerdicts.get(imageId));
            lines.push({ oldUrl: key, imageId, deliveryUrl: location, status: verdict.status, detail: verdict.detail });
        });
    }
    answers.stop();

    for (const image of state.images) {
        const verdict = imageVerdicts.get(image.imageId)!;
        if (verdict.status !== "ok") problems.push(`image ${image.imageId}: ${verdict.status}: ${verdict.detail}`);
        if (!imageOfRow.has(image.imageId)) {
            lines.push({ oldUrl: image.url ?? image.filePath ?? "", imageId: image.imageId, deliveryUrl: image.deliveryUrl ?? "", status: verdict.status, detail: verdict.detail });
        }
    }
    return { lines, images: [...imageVerdicts.values()], rows: rowVerdicts, problems, notes };
}

function imagesClient(options: VerifyOptions, image: StateImage): ImagesClient {
    return new ImagesClient({
        apiToken: options.apiToken, accountId: image.accountId, apiBaseUrl: image.apiBaseUrl,
        ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
    });
}

/** The account's images under the stack's custom IDs: a listing (10,000 a page) or one read each, whichever is cheaper. */
async function fetchImages(client: ImagesClient, images: StateImage[], report: (line: string) => void): Promise<Map<string, CfImage>> {
    const progress = new Progress("verify: images", images.length, report);
    try {
        const found = await client.find(images.map((i) => i.imageId), { concurrency: 8, perPage: LIST_PAGE, onProgress: () => progress.tick() });
        return new Map([...found].filter((entry): entry is [string, CfImage] => entry[1] !== null));
    } finally {
        progress.stop();
    }
}

/** The rows the table holds for the shard (the rows it owns, and any other row under the same keys). */
async function shardRows(options: VerifyOptions, shard: StateShard): Promise<Map<string, string>> {
    const d1 = new D1Client({
        apiToken: options.apiToken, accountId: shard.accountId, databaseId: shard.databaseId, apiBaseUrl: shard.apiBaseUrl,
        ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
    });
    const [result] = await d1.query([{ sql: "SELECT path, location FROM redirects WHERE shard = ?", params: [shard.shard] }]);
    return new Map((result?.results ?? []).map((r) => [String(r.path), String(r.location)]));
}

/** GET of the old path (a `host/path` key with matchHost is asked with that Host header); never follows the 301. */
async function askWorker(workerUrl: string, key: string): Promise<[number | Error, string | undefined]> {
    const slash = key.indexOf("/");
    const [host, pathname] = slash === 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash)];
    for (let attempt = 1; ; attempt++) {
        try {
            const res = await axios.request({
                url: `${workerUrl.replace(/\/+$/, "")}${pathname}`, method: "HEAD", maxRedirects: 0, validateStatus: () => true,
                timeout: 15_000, headers: host ? { Host: host } : {},
            });
            if (res.status >= 500 && attempt < 3) continue;
            return [res.status, typeof res.headers.location === "string" ? res.headers.location : undefined];
        } catch (error) {
            if (attempt >= 3) return [new Error((error as Error).message), undefined];
        }
    }
}

/** The source's bytes, hashed: a local file, an http(s) URL, or an S3 object (presigned with the AWS chain). */
async function sourceSha256(image: StateImage, projectDir: string): Promise<string | Error> {
    try {
        if (image.url === undefined) {
            if (image.filePath === undefined) return new Error("the state records neither url nor filePath");
            return sha256(await fs.readFile(path.resolve(projectDir, image.filePath)));
        }
        const url = image.url.startsWith("s3://")
            ? await (await import("../provider/s3-presign")).presignS3Url(image.url, image.s3, {})
            : image.url;
        const res = await axios.get<ArrayBuffer>(url, { responseType: "arraybuffer", timeout: 60_000, maxRedirects: 5 });
        return sha256(Buffer.from(res.data));
    } catch (error) {
        // The message only: an S3 source's presigned URL (in the error's config) must not be printed.
        return new Error((error as Error).message);
    }
}

function sha256(bytes: Buffer): string {
    return createHash("sha256").update(bytes).digest("hex");
}

function groupBy<T>(items: T[], keyOf: (item: T) => string): T[][] {
    const groups = new Map<string, T[]>();
    for (const item of items) {
        const key = keyOf(item);
        const group = groups.get(key);
        if (group) group.push(item);
        else groups.set(key, [item]);
    }
    return [...groups.values()];
}
