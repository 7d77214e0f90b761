import { S3Client, PutObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import pLimit from "p-limit";
import { openSource, type ImageSource } from "../components/sources";
import { errorMessage, round, TableRow } from "./report";
import { SectionContext, SectionResult } from "./section";

// s3rver ships without types; this is the part of its API used here.
const S3rver: new (opts: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void> } = require("s3rver");


/** Section 5: listing an S3 prefix through the s3 source (s3rver) and hashing a local folder through the local source. */
export async function run(ctx: SectionContext): Promise<SectionResult> {
    const s3Keys = ctx.scaled(10_000);
    const localFiles = ctx.scaled(2_000);
    const json: Record<string, unknown> = { s3Keys, localFiles };
    const rows: TableRow[] = [];
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "bench-listing-"));
    try {
        try {
            await measureS3(work, s3Keys, json);
            rows.push({
                section: "listing",
                caseName: `s3 list ${s3Keys} keys (s3rver)`,
                result: `${json.s3Seconds} s via s3 source (${round(s3Keys / (json.s3Seconds as number), 0)} keys/s); raw SDK paging ${json.s3RawSdkSeconds} s`,
                target: "-",
                met: "n/a",
            });
        } catch (err) {
            json.s3Error = errorMessage(err);
            rows.push({ section: "listing", caseName: `s3 list ${s3Keys} keys`, result: `error: ${json.s3Error}` + (json.s3RawSdkSeconds !== undefined ? ` (raw SDK paging ${json.s3RawSdkSeconds} s)` : ""), target: "-", met: "error" });
        }
        try {
            await measureLocal(work, localFiles, json);
            rows.push({
                section: "listing",
                caseName: `local hash ${localFiles} files (${json.localMB} MB)`,
                result: `${json.localSeconds} s, ${json.localMBps} MB/s via local source (page-cached; raw sha256 ${json.localRawMBps} MB/s)`,
                target: "-",
                met: "n/a",
            });
        } catch (err) {
            json.localError = errorMessage(err);
            rows.push({ section: "listing", caseName: `local hash ${localFiles} files`, result: `error: ${json.localError}` + (json.localRawMBps !== undefined ? ` (raw sha256 ${json.localRawMBps} MB/s)` : ""), target: "-", met: "error" });
        }
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
    return { json, rows };
}

async function measureS3(work: string, keys: number, into: Record<string, unknown>): Promise<void> {
    const bucket = "bench-bucket";
    const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: path.join(work, "s3"), configureBuckets: [{ name: bucket }] });
    const { port } = await server.run();
    const endpoint = `http://127.0.0.1:${port}`;
    const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
    const client = new S3Client({ region: "us-east-1", endpoint, forcePathStyle: true, credentials });
    try {
        const limit = pLimit(32);
        const body = Buffer.from("bench");
        const started = Date.now();
        await Promise.all(
            Array.from({ length: keys }, (_, i) =>
                limit(() =>
                    client.send(
                        new PutObjectCommand({ Bucket: bucket, Key: `library/${String(i % 100).padStart(2, "0")}/img-${i}.jpg`, Body: body, ContentType: "image/jpeg" }),
                    ),
                ),
            ),
        );
        into.s3PopulateSeconds = round((Date.now() - started) / 1000, 1);

        let t = process.hrtime.bigint();
        let raw = 0;
        let token: string | undefined;
        do {
            const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "library/", ContinuationToken: token }));
            raw += page.KeyCount ?? 0;
            token = page.NextContinuationToken;
        } while (token);
        into.s3RawSdkSeconds = seconds(t);
        if (raw !== keys) throw new Error(`raw ListObjectsV2 returned ${raw} keys, expected ${keys}`);

        const source = openSource(
            { kind: "s3", bucket, prefix: "library/", region: "us-east-1", endpoint, forcePathStyle: true, access: "public" },
            { configPath: "bench.s3", aws: { accessKey: credentials.accessKeyId, secretKey: credentials.secretAccessKey, region: "us-east-1" } },
        );
        t = process.hrtime.bigint();
        const listed = await count(source);
        into.s3Seconds = seconds(t);
        if (listed !== keys) throw new Error(`s3 source listed ${listed} images, expected ${keys}`);
    } finally {
        client.destroy();
        await server.close();
    }
}

async function measureLocal(work: string, files: number, into: Record<string, unknown>): Promise<void> {
    const dir = path.join(work, "local");
    let bytes = 0;
    for (let i = 0; i < files; i++) {
        const sub = path.join(dir, `album-${i % 20}`);
        if (i < 20) fs.mkdirSync(sub, { recursive: true });
        const size = 50_000 + Math.floor(((i * 7919) % 1000) * 450);
        const body = crypto.randomBytes(size);
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(body);
        fs.writeFileSync(path.join(sub, `photo-${i}.png`), body);
        bytes += size;
    }
    const mb = bytes / 1e6;
    into.localMB = round(mb, 1);

    let t = process.hrtime.bigint();
    for (let i = 0; i < files; i++) {
        await new Promise<void>((resolve, reject) => {
            const hash = crypto.createHash("sha256");
            fs.createReadStream(path.join(dir, `album-${i % 20}`, `photo-${i}.png`))
                .on("data", (d) => hash.update(d))
                .on("end", () => (hash.digest(), resolve()))
                .on("error", reject);
        });
    }
    into.localRawMBps = round(mb / seconds(t), 1);

    const source = openSource({ kind: "local", dir }, { configPath: "bench.local" });
    t = process.hrtime.bigint();
    const listed = await count(source);
    into.localSeconds = seconds(t);
    into.localMBps = round(mb / (into.localSeconds as number), 1);
    if (listed !== files) throw new Error(`local source listed ${listed} images, expected ${files}`);
}

async function count(source: ImageSource): Promise<number> {
    let n = 0;
    for await (const _ of source.list()) n++;
    return n;
}

function seconds(start: bigint): number {
    return round(Number(process.hrtime.bigint() - start) / 1e9, 3);
}
