// Issue 8.3: one table of bad inputs across stack config, source listings, resource inputs (through the real
// provider host) and Worker requests (fuzzed with fast-check). Each gets a specific error naming the key or
// property to fix, or an HTTP 3xx/4xx (never a 5xx, never a crash), nothing is created for it, and no secret
// appears in any message or response.
import { strict as assert } from "assert";
import { promises as fs } from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import fc from "fast-check";
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig } from "../../config";
import { planImages } from "../../components/image-plan";
import { openSource } from "../../components/sources";
import { Emulator, startEmulator } from "../emulator";
import { ImageOrigin, pngBytes, pngOfSize, startImageOrigin } from "../emulator/fixtures";
import { DesiredResource, EngineDriver } from "../host/engine-driver";
import { badImageInputs } from "../provider/bad-inputs";
import { RecordingMocks, recordRegistrationOptions } from "../program/mocks";
import {
    captureProviders, Exposure, GENEROUS_RATE_LIMIT, IMAGE_TYPE, imageResource, providerConfig, rowsResource, secret,
    SerializedProvider, sleep, SOAK,
} from "./harness";
import { DATABASE_ID, RedirectWorker, startRedirectWorker } from "./redirect-worker";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require("s3rver");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const s3Accounts = require("s3rver/lib/models/account") as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };

const BOOTSTRAP = "tok-bootstrap-badinput-1d7a03c9e5";
const SCOPED = "tok-scoped-badinput-66f0b2d8a1";
const S3_ACCESS_KEY = "AKIARELIABILITY0008";
const S3_SECRET = "s3-secret-badinput-9Qm2xVb7Lk";
const CLOUDINARY_SECRET = "cld-secret-badinput-Zt4Wq8Rn";
const WEBHOOK_SECRET = "whsec-badinput-3e9d5a1c07";
const SECRETS = { bootstrap: BOOTSTRAP, scoped: SCOPED, s3Secret: S3_SECRET, cloudinarySecret: CLOUDINARY_SECRET, webhookSecret: WEBHOOK_SECRET, urlPassword: "hunter2" };
const SOURCE = "sourcing-kit:sources[1]";
const FUZZ_RUNS = SOAK ? 2000 : 150;

type Area = "config" | "source listing" | "resource input" | "worker request";

/** One bad input: what is wrong, how to feed it in (the observed error message or "HTTP <status>"), what must be named. */
interface BadInput { area: Area; what: string; run: () => Promise<string>; expect: RegExp }

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("reliability: bad input is rejected with a specific error and creates nothing", function () {
    this.timeout(SOAK ? 1_800_000 : 180_000);
    let providers: { image: SerializedProvider; rows: SerializedProvider };
    let emu: Emulator;
    let origin: ImageOrigin;
    let driver: EngineDriver;
    let worker: RedirectWorker;
    let s3: { close(): Promise<void> };
    let s3Endpoint: string;
    let cloudinary: http.Server;
    /** s3rver does not verify SigV4 signatures; this endpoint answers what S3 says to a wrong secret key. */
    let strictS3: http.Server;
    let strictS3Url: string;
    let elsewhere: http.Server;
    let elsewhereHost: string;
    let elsewhereHits = 0;
    let cloudinaryUrl: string;
    let dir: string;
    let s3Dir: string;
    const exposure = new Exposure();
    const fuzzStatuses: Record<string, number> = {};

    // ------------------------------------------------------------------ config
    const goodConfig: Record<string, string> = {
        "sourcing-kit:accountId": "0123456789abcdef0123456789abcdef",
        "sourcing-kit:accountHash": "hash-test",
        "sourcing-kit:sources": JSON.stringify([{ kind: "urls", urls: ["https://old-cdn.example.com/a.jpg"] }]),
        "cloudflare:apiToken": BOOTSTRAP,
    };
    const configProblems = (change: Record<string, string | undefined>, secretKeys = ["cloudflare:apiToken"]) => async () => {
        const values = Object.fromEntries(Object.entries({ ...goodConfig, ...change }).filter((e): e is [string, string] => e[1] !== undefined));
        const result = parseStackConfig({ values, secretKeys: new Set(secretKeys), env: {}, now: new Date("2026-11-28T00:00:00Z") });
        if (result.ok) throw new Error("the config was accepted");
        return result.problems.join("\n");
    };
    const sources = (list: unknown[]) => JSON.stringify(list);

    /**
     * The whole stack program under mocks with `sourceList`: the error it stops with (a component's RunError surfaces as
     * a rejection, as the engine would report it), or the resource URNs it would have registered twice.
     */
    const programError = (sourceList: unknown[]) => async () => {
        const errors: string[] = [];
        const onRejection = (e: unknown) => void errors.push(e instanceof Error ? e.message : String(e));
        process.on("unhandledRejection", onRejection);
        try {
            await pulumi.runtime.setMocks(new RecordingMocks(), "sourcing-kit", "bad-input", false);
            pulumi.runtime.setAllConfig({ ...goodConfig, "sourcing-kit:scopedToken": "false", "sourcing-kit:sources": sources(sourceList) }, ["cloudflare:apiToken"]);
            const registrations = recordRegistrationOptions();
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const program = require("../../index") as () => Promise<Record<string, unknown>>;
            await program().catch((e: Error) => errors.push(e.message));
            for (let i = 0; i < 400 && errors.length === 0; i++) await sleep(25);
            // The URN the engine gives a registration: the parent's type chain, the type and the name.
            const urns = registrations.filter((r) => r.type === IMAGE_TYPE).map((r) => `${r.parent.split("::")[2]}$${r.type}::${r.name}`);
            const duplicated = urns.filter((urn, i) => urns.indexOf(urn) !== i);
            if (duplicated.length > 0) return `duplicate resource URNs (the engine would stop on them): ${duplicated.join(", ")}`;
            if (errors.length === 0) throw new Error("the program was accepted");
            return errors.join("\n");
        } finally {
            process.off("unhandledRejection", onRejection);
            pulumi.runtime.setAllConfig({}, []);
        }
    };

    // ------------------------------------------------------------------ sources
    const listingError = (source: unknown, aws?: { accessKey?: string; secretKey?: string; region?: string }) => async () => {
        try {
            const plan = await planImages(openSource(source, { configPath: SOURCE, aws }).list(), { configPath: SOURCE, deliveryUrl: (id) => `https://imagedelivery.net/h/${id}/public` });
            if (plan.images.length > 0) throw new Error(`planned ${plan.images.length} image(s) from bad input`);
            return Object.entries(plan.skipExamples).map(([reason, keys]) => `skipped ${reason}: ${keys!.join(", ")}`).join("\n");
        } catch (e) {
            if (/from bad input/.test((e as Error).message)) throw e;
            return (e as Error).message;
        }
    };
    /** A manifest file in the temp folder, written with `text` first unless it is undefined (missing, a folder, …). */
    const manifest = (name: string, text?: string) => async () => {
        const file = path.join(dir, name);
        if (text !== undefined) await fs.writeFile(file, text);
        return listingError({ kind: "manifest", path: file })();
    };

    // ------------------------------------------------------------------ resources (through the real host)
    const goodImage = () => ({
        accountId: emu.accountId, imageId: "bad/input.png", url: origin.url("/img/1.png"), sourceHash: "sha256-bad-input",
        apiBaseUrl: emu.baseUrl, apiToken: secret(SCOPED),
    });
    const rejected = async (resource: DesiredResource): Promise<string> => {
        const result = await driver.up([resource]);
        if (result.errors.length === 0) throw new Error(`${resource.urn} was accepted`);
        driver.state.clear();
        return result.errors.map((e) => (e.failures?.length ? e.failures.map((f) => `${f.property}: ${f.reason}`).join("\n") : e.message)).join("\n");
    };
    let named = 0;
    const image = (inputs: Record<string, unknown>) => () => rejected(imageResource(providers.image, `bad-${named++}`, inputs));
    const rows = (inputs: Record<string, unknown>) => () => rejected(rowsResource(providers.rows, `bad-rows-${named++}`, {
        accountId: emu.accountId, databaseId: DATABASE_ID, shard: "bad", apiBaseUrl: emu.baseUrl, apiToken: secret(SCOPED), ...inputs,
    }));

    // ------------------------------------------------------------------ worker
    const status = (url: string, init?: RequestInit) => async () => {
        const res = await worker.fetch(url, init);
        const body = await res.text();
        exposure.add(`worker ${url}`, `${body}\n${JSON.stringify([...res.headers])}`);
        return `HTTP ${res.status}`;
    };
    const HOST = "http://old-cdn.test";
    const webhook = `${HOST}/_sourcing-kit/webhook`;

    /** Fuzzed requests: never a 5xx; a 3xx, a 4xx, or a passthrough to the origin (marked by x-redirect-source). */
    const fuzz = (label: string, arbitrary: fc.Arbitrary<{ url: string; init: RequestInit }>) => async () => {
        let count = 0;
        await fc.assert(fc.asyncProperty(arbitrary, async ({ url, init }) => {
            const res = await worker.fetch(url, init);
            const body = await res.text();
            count++;
            const passthrough = res.headers.get("x-redirect-source") !== null && res.status < 500;
            const key = passthrough && res.status < 300 ? "passthrough" : `${Math.floor(res.status / 100)}xx`;
            fuzzStatuses[key] = (fuzzStatuses[key] ?? 0) + 1;
            if (body.includes(WEBHOOK_SECRET) || body.includes(SCOPED)) throw new Error(`secret in the answer to ${url}`);
            return res.status < 500 && (passthrough || (res.status >= 300 && res.status < 500));
        }), { numRuns: FUZZ_RUNS, seed: 8303 });
        if (elsewhereHits > 0) throw new Error(`${elsewhereHits} fuzzed requests were proxied to another host`);
        return `all ${count} fuzzed ${label} answered 3xx/4xx or passed through, no 5xx`;
    };
    const pathChunk = fc.oneof(
        fc.constantFrom("//127.0.0.1:1/", "//evil.example/", "/\\evil.example/", "%", "%2F", "%2f", "%25", "%00", "%ZZ", "..", ".", "//", "/", "é", "💥", "'", '"', ";", "?", "#", "\\", " ", "+", "%E2%82", "\u0000", "\t", "<script>", "OR 1=1--"),
        fc.string({ maxLength: 12 }),
        fc.webSegment(),
    );
    const fuzzedPath = fc.array(pathChunk, { maxLength: 12 }).map((parts) => `/${parts.join("")}`);
    const methods = fc.constantFrom("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH");
    const headerName = fc.oneof(
        fc.constantFrom("x-sourcing-kit-signature", "x-sourcing-kit-timestamp", "accept", "accept-encoding", "range", "if-none-match",
            "if-modified-since", "cookie", "authorization", "x-forwarded-for", "cf-connecting-ip", "referer", "user-agent", "content-type"),
        fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
    );
    const headerValue = fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom("sha256=", "sha256=zz", "bytes=0-", "-1", "9".repeat(30), `sha256=${"0".repeat(64)}`))
        .map((v) => v.replace(/[^\t\x20-\x7e]/g, "").trim());

    const table: BadInput[] = [
        // Stack config (config.ts): every bad key reported by its config path before anything is declared.
        { area: "config", what: "accountId missing", run: configProblems({ "sourcing-kit:accountId": undefined }), expect: /^sourcing-kit:accountId: required/m },
        { area: "config", what: "accountId not 32 hex characters", run: configProblems({ "sourcing-kit:accountId": "my-account" }), expect: /^sourcing-kit:accountId: must be the 32-character hex/m },
        { area: "config", what: "accountHash with a slash", run: configProblems({ "sourcing-kit:accountHash": "a/b" }), expect: /^sourcing-kit:accountHash: must contain only/m },
        { area: "config", what: "sources not structured", run: configProblems({ "sourcing-kit:sources": "s3://bucket" }), expect: /^sourcing-kit:sources: not valid/m },
        { area: "config", what: "sources an empty list", run: configProblems({ "sourcing-kit:sources": "[]" }), expect: /^sourcing-kit:sources: must list at least one source/m },
        { area: "config", what: "source of an unknown kind", run: configProblems({ "sourcing-kit:sources": sources([{ kind: "ftp", host: "x" }]) }), expect: /^sourcing-kit:sources\[0\]\.kind: must be one of/m },
        { area: "config", what: "s3 source without bucket", run: configProblems({ "sourcing-kit:sources": sources([{ kind: "s3", prefix: "p/" }]) }), expect: /^sourcing-kit:sources\[0\]\.bucket/m },
        { area: "config", what: "urls source with an ftp URL", run: configProblems({ "sourcing-kit:sources": sources([{ kind: "urls", urls: ["ftp://x/a.jpg"] }]) }), expect: /^sourcing-kit:sources\[0\]\.urls\[0\]/m },
        { area: "config", what: "urls source with user:password in a URL", run: configProblems({ "sourcing-kit:sources": sources([{ kind: "urls", urls: ["https://user:hunter2@old-cdn.example.com/a.jpg"] }]) }), expect: /^sourcing-kit:sources\[0\]\.urls\[0\]: .*(credential|password)/im },
        { area: "config", what: "two sources landing on one custom ID (whole program under mocks)", run: programError([{ name: "old-cdn", kind: "urls", urls: ["https://old-cdn.example.com/logo.png"] }, { name: "blog", kind: "urls", urls: ["https://blog.example.com/logo.png"] }]), expect: /^sourcing-kit:sources\[1\]: image id "logo\.png" .* is also planned by sourcing-kit:sources\[0\]/m },
        { area: "config", what: "misspelt key", run: configProblems({ "sourcing-kit:onConflit": "adopt" }), expect: /^sourcing-kit:onConflit: unknown key \(did you mean sourcing-kit:onConflict\?\)/m },
        { area: "config", what: "onConflict outside the enum", run: configProblems({ "sourcing-kit:onConflict": "skip" }), expect: /^sourcing-kit:onConflict: must be one of adopt, overwrite, fail/m },
        { area: "config", what: "rateLimit with a negative budget", run: configProblems({ "sourcing-kit:rateLimit": JSON.stringify({ requests: -5, windowSeconds: 300 }) }), expect: /^sourcing-kit:rateLimit\.requests/m },
        { area: "config", what: "useBatchApi not a boolean", run: configProblems({ "sourcing-kit:useBatchApi": "yes" }), expect: /^sourcing-kit:useBatchApi: must be true or false/m },
        { area: "config", what: "tokenExpiresOn in the past", run: configProblems({ "sourcing-kit:tokenExpiresOn": "2020-01-01T00:00:00Z" }), expect: /^sourcing-kit:tokenExpiresOn: .*in the past/m },
        { area: "config", what: "bootstrap token stored in plain text", run: configProblems({}, []), expect: /^cloudflare:apiToken: must be stored as a secret/m },
        { area: "config", what: "Cloudinary secret inside sources", run: configProblems({ "sourcing-kit:sources": sources([{ kind: "cloudinary", cloudName: "demo", apiKey: "k", apiSecret: CLOUDINARY_SECRET }]) }), expect: /^sourcing-kit:sources\[0\]\.apiSecret: do not put secrets in sources/m },
        { area: "config", what: "redirects without route or custom domain", run: configProblems({ "sourcing-kit:redirects": JSON.stringify({ zoneId: "0123456789abcdef0123456789abcdef", fallback: "404" }) }), expect: /^sourcing-kit:redirects: set exactly one of routePattern/m },

        // Source listings: bad manifest lines name the file and line; unreadable paths and bad credentials name the key.
        { area: "source listing", what: "manifest that does not exist", run: manifest("missing.csv"), expect: new RegExp(`^${escape(SOURCE)}\\.path: .*cannot read the manifest \\(ENOENT\\)`) },
        { area: "source listing", what: "manifest path that is a folder", run: manifest("folder.csv"), expect: new RegExp(`^${escape(SOURCE)}\\.path: .*is not a file`) },
        { area: "source listing", what: "manifest below a file (ENOTDIR)", run: manifest("plain.txt/inner.csv"), expect: new RegExp(`^${escape(SOURCE)}\\.path: .*ENOTDIR`) },
        { area: "source listing", what: "manifest with a .txt extension", run: manifest("plain.txt"), expect: new RegExp(`^${escape(SOURCE)}\\.path: path must end in \\.csv or \\.ndjson`) },
        { area: "source listing", what: "CSV with an unknown column", run: manifest("columns.csv", "url,colour\nhttps://h/a.jpg,red\n"), expect: /\.path: .*columns\.csv: line 1: unknown column "colour"/ },
        { area: "source listing", what: "CSV line with a relative URL", run: manifest("relative.csv", "url\nhttps://h/a.jpg\n/b.jpg\n"), expect: /\.path: .*relative\.csv: line 3: url must be an absolute http\(s\) URL/ },
        { area: "source listing", what: "CSV line with broken metadata JSON", run: manifest("meta.csv", 'url,metadata\nhttps://h/a.jpg,"{alt: x"\n'), expect: /\.path: .*meta\.csv: line 2: not valid JSON/ },
        { area: "source listing", what: "NDJSON line that is not JSON", run: manifest("garbage.ndjson", "{\"url\":\"https://h/a.jpg\"}\nnot json\n"), expect: /\.path: .*garbage\.ndjson: line 2: not valid JSON/ },
        { area: "source listing", what: "NDJSON line that is an array", run: manifest("array.ndjson", "[\"https://h/a.jpg\"]\n"), expect: /\.path: .*array\.ndjson: line 1: expected a JSON object/ },
        { area: "source listing", what: "NDJSON line with a UUID as id", run: manifest("uuid.ndjson", "{\"url\":\"https://h/a.jpg\",\"id\":\"8f14e45f-ceea-467f-a8f5-3c5a0b1f2d3e\"}\n"), expect: /\.path: .*uuid\.ndjson: line 1: id is not a valid custom ID/ },
        { area: "source listing", what: "NDJSON line with an unknown field", run: manifest("field.ndjson", "{\"url\":\"https://h/a.jpg\",\"colour\":\"red\"}\n"), expect: /\.path: .*field\.ndjson: line 1: unknown field "colour"/ },
        { area: "source listing", what: "NDJSON line without url", run: manifest("nourl.ndjson", "{\"hash\":\"abc\"}\n"), expect: /\.path: .*nourl\.ndjson: line 1: url is required/ },
        { area: "source listing", what: "NDJSON metadata that is nested", run: manifest("nested.ndjson", "{\"url\":\"https://h/a.jpg\",\"metadata\":{\"a\":{\"b\":1}}}\n"), expect: /\.path: .*nested\.ndjson: line 1: metadata\.a: must be a string, number or boolean/ },
        { area: "source listing", what: "CSV line with credentials in the URL", run: manifest("creds.csv", "url\nhttps://user:hunter2@h/a.jpg\n"), expect: /\.path: .*creds\.csv: line 2: .*(credential|password)/i },
        { area: "source listing", what: "local folder that does not exist", run: listingError({ kind: "local", dir: "/nonexistent/sourcing-kit" }), expect: new RegExp(`^${escape(SOURCE)}\\.dir: cannot read folder .*ENOENT`) },
        { area: "source listing", what: "local folder that is a file", run: () => listingError({ kind: "local", dir: path.join(dir, "plain.txt") })(), expect: new RegExp(`^${escape(SOURCE)}\\.dir: cannot read folder .*ENOTDIR`) },
        { area: "source listing", what: "local text file named .jpg (not an image)", run: () => listingError({ kind: "local", dir: path.join(dir, "non-image") })(), expect: /^skipped not-an-image: notes\.jpg$/ },
        { area: "source listing", what: "local PNG of 10 MB + 1 byte", run: () => listingError({ kind: "local", dir: path.join(dir, "large") })(), expect: /^skipped too-large: big\.png$/ },
        { area: "source listing", what: "local empty .png", run: () => listingError({ kind: "local", dir: path.join(dir, "empty") })(), expect: /^skipped empty: empty\.png$/ },
        { area: "source listing", what: "S3 with a wrong secret key (S3 endpoint answering SignatureDoesNotMatch)", run: () => listingError({ kind: "s3", bucket: "photos", endpoint: strictS3Url, forcePathStyle: true }, { accessKey: S3_ACCESS_KEY, secretKey: "wrong-secret", region: "us-east-1" })(), expect: new RegExp(`^${escape(SOURCE)}: the AWS credentials were rejected .*SignatureDoesNotMatch.*aws:secretKey`) },
        { area: "source listing", what: "S3 with an unknown access key (s3rver)", run: () => listingError({ kind: "s3", bucket: "photos", endpoint: s3Endpoint, forcePathStyle: true }, { accessKey: "AKIAUNKNOWN000000000", secretKey: S3_SECRET, region: "us-east-1" })(), expect: new RegExp(`^${escape(SOURCE)}: the AWS credentials were rejected .*InvalidAccessKeyId`) },
        { area: "source listing", what: "S3 bucket that does not exist (s3rver)", run: () => listingError({ kind: "s3", bucket: "no-such-bucket", endpoint: s3Endpoint, forcePathStyle: true }, { accessKey: S3_ACCESS_KEY, secretKey: S3_SECRET, region: "us-east-1" })(), expect: new RegExp(`^${escape(SOURCE)}\\.bucket: bucket "no-such-bucket" does not exist`) },
        { area: "source listing", what: "Cloudinary rejecting key and secret (echoing them)", run: () => listingError({ kind: "cloudinary", cloudName: "demo", apiKey: "key-1", apiSecret: CLOUDINARY_SECRET, apiBaseUrl: cloudinaryUrl })(), expect: new RegExp(`^${escape(SOURCE)}\\.apiKey: Cloudinary rejected the API key and secret`) },

        // Resource inputs through the real host: Check fails naming the property; no create is sent.
        // Worker requests: 3xx/4xx, never a 5xx.
        { area: "worker request", what: "POST to an old image path", run: status(`${HOST}/a.jpg`, { method: "POST", body: "x" }), expect: /^HTTP (4\d\d|3\d\d)$/ },
        { area: "worker request", what: "GET //<another host>/x (a protocol-relative path)", run: async () => `${await status(`${HOST}//${elsewhereHost}/steal`)()}${elsewhereHits > 0 ? " and proxied to another host" : ""}`, expect: /^HTTP [34]\d\d$/ },
        { area: "worker request", what: "GET //", run: status(`${HOST}//`), expect: /^HTTP [34]\d\d$/ },
        { area: "worker request", what: "GET on the webhook path", run: status(webhook), expect: /^HTTP 405$/ },
        { area: "worker request", what: "unsigned webhook", run: status(webhook, { method: "POST", body: JSON.stringify({ type: "image.deleted", imageId: "x" }) }), expect: /^HTTP 401$/ },
        { area: "worker request", what: "webhook body over 64 KiB", run: status(webhook, { method: "POST", body: "x".repeat(65 * 1024 + 1) }), expect: /^HTTP 413$/ },
        { area: "worker request", what: "webhook with a malformed signature header", run: status(webhook, { method: "POST", body: "{}", headers: { "x-sourcing-kit-timestamp": String(Math.floor(Date.now() / 1000)), "x-sourcing-kit-signature": "sha256=zz" } }), expect: /^HTTP 401$/ },
        { area: "worker request", what: "fuzzed paths and methods", run: () => fuzz("paths", fc.record({ p: fuzzedPath, method: methods }).map(({ p, method }) => ({ url: `${HOST}${p}`, init: { method, body: method === "GET" || method === "HEAD" ? undefined : "body" } })))(), expect: /^all \d+ fuzzed paths answered/ },
        { area: "worker request", what: "fuzzed headers (incl. signature and timestamp)", run: () => fuzz("headers", fc.record({ headers: fc.dictionary(headerName, headerValue, { maxKeys: 6 }), onWebhook: fc.boolean(), method: methods }).map(({ headers, onWebhook, method }) => ({ url: onWebhook ? webhook : `${HOST}/mapped/a.jpg`, init: { method, headers, body: method === "GET" || method === "HEAD" ? undefined : "{}" } })))(), expect: /^all \d+ fuzzed headers answered/ },
    ];
    // CloudflareImage inputs, from the provider's own catalogue of bad inputs, plus the ones only create can see.
    const resourceCases = (): BadInput[] => [
        ...badImageInputs({ ...goodImage() }).map(([what, inputs, property, reason]): BadInput => ({
            area: "resource input", what: `CloudflareImage: ${what}`, run: image(inputs), expect: new RegExp(`^${escape(property)}: .*${reason.source}`, "m"),
        })),
        { area: "resource input", what: "CloudflareImage: filePath of 10 MB + 1 byte", run: image({ ...goodImage(), url: undefined, filePath: path.join(dir, "large", "big.png") }), expect: /filePath .*big\.png: the file is 10485761 bytes, over Cloudflare Images' upload limit/ },
        { area: "resource input", what: "CloudflareImage: filePath that does not exist", run: image({ ...goodImage(), url: undefined, filePath: path.join(dir, "nope.png") }), expect: /filePath|nope\.png/ },
        { area: "resource input", what: "RedirectRows: row key not normalised", run: rows({ rows: { "/a//b/": "https://imagedelivery.net/h/a/public" } }), expect: /^rows: rows key "\/a\/\/b\/" is not a normalised path/m },
        { area: "resource input", what: "RedirectRows: row value not a URL", run: rows({ rows: { "/a.jpg": "a.jpg" } }), expect: /^rows: .*not an absolute http\(s\) delivery URL/m },
        { area: "resource input", what: "RedirectRows: over 1,000 rows", run: rows({ rows: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`/r/${i}.jpg`, "https://imagedelivery.net/h/r/public"])) }), expect: /^rows: rows has 1001 entries, over 1000/m },
        { area: "resource input", what: "RedirectRows: empty shard name", run: rows({ shard: "", rows: {} }), expect: /^shard: shard is empty/m },
    ];

    before(async () => {
        providers = await captureProviders();
        dir = await fs.mkdtemp(path.join(os.tmpdir(), "sk-bad-input-"));
        await fs.mkdir(path.join(dir, "folder.csv"));
        await fs.writeFile(path.join(dir, "plain.txt"), "not a manifest");
        for (const [sub, name, bytes] of [["non-image", "notes.jpg", Buffer.from("meeting notes, not a JPEG")], ["large", "big.png", pngOfSize(10 * 1024 * 1024 + 1)],
            ["empty", "empty.png", Buffer.alloc(0)]] as const) {
            await fs.mkdir(path.join(dir, sub));
            await fs.writeFile(path.join(dir, sub, name), bytes);
        }

        s3Accounts.DUMMY_ACCOUNT.createKeyPair(S3_ACCESS_KEY, S3_SECRET);
        s3 = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: (s3Dir = await fs.mkdtemp(path.join(os.tmpdir(), "sk-bad-s3-"))), configureBuckets: [{ name: "photos" }] });
        s3Endpoint = `http://127.0.0.1:${((await (s3 as unknown as { run(): Promise<AddressInfo> }).run()) as AddressInfo).port}`;

        // A Cloudinary Admin API that rejects the key pair and, carelessly, echoes the secret back.
        cloudinary = http.createServer((req, res) => {
            res.writeHead(401, { "content-type": "application/json" });
            res.end(JSON.stringify({ error: { message: `Invalid api_key key-1 and api_secret ${CLOUDINARY_SECRET}` } }));
        });
        await new Promise<void>((resolve) => cloudinary.listen(0, "127.0.0.1", resolve));
        cloudinaryUrl = `http://127.0.0.1:${(cloudinary.address() as AddressInfo).port}`;

        strictS3 = http.createServer((req, res) => {
            res.writeHead(403, { "content-type": "application/xml" });
            res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated ' +
                `does not match the signature you provided.</Message><StringToSign>${req.headers.authorization ?? ""}</StringToSign></Error>`);
        });
        await new Promise<void>((resolve) => strictS3.listen(0, "127.0.0.1", resolve));
        strictS3Url = `http://127.0.0.1:${(strictS3.address() as AddressInfo).port}`;

        origin = await startImageOrigin();
        origin.register("/mapped/a.jpg", pngBytes(7));
        // Another host on loopback: the Worker's origin passthrough must never reach it.
        elsewhere = http.createServer((_req, res) => {
            elsewhereHits++;
            res.end("content from another host");
        });
        await new Promise<void>((resolve) => elsewhere.listen(0, "127.0.0.1", resolve));
        elsewhereHost = `127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
        emu = await startEmulator({ tokens: [SCOPED, BOOTSTRAP], rateLimit: GENEROUS_RATE_LIMIT });
        worker = await startRedirectWorker({
            FALLBACK: "origin", ORIGIN_URL: origin.baseUrl, WEBHOOK_SECRET, IMAGES_API_BASE: emu.baseUrl, IMAGES_API_TOKEN: SCOPED, ACCOUNT_ID: emu.accountId,
        });
        await worker.db.prepare("INSERT INTO redirects (path, location, image_id, shard, updated_at) VALUES (?1, ?2, ?3, 'seed', 0)")
            .bind("/mapped/a.jpg", "https://imagedelivery.net/hash-test/mapped/a/public", "mapped/a").run();
        driver = await EngineDriver.start(providerConfig(BOOTSTRAP, { "aws:secretKey": secret(S3_SECRET), "aws:accessKey": S3_ACCESS_KEY }), undefined, 4);
        exposure.watch("host output", driver.host.output);
        table.push(...resourceCases());
    });

    after(async () => {
        await driver?.host.kill();
        await worker?.dispose();
        await emu?.close();
        await origin?.close();
        await s3?.close();
        for (const server of [cloudinary, strictS3, elsewhere]) await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
        for (const folder of [dir, s3Dir]) if (folder) await fs.rm(folder, { recursive: true, force: true });
    });

    it("has at least 40 bad inputs across config, source listings, resource inputs and Worker requests", function () {
        // The table is complete once before() has added the resource cases.
        const areas = new Set(table.map((c) => c.area));
        assert.deepEqual([...areas].sort(), ["config", "resource input", "source listing", "worker request"]);
        assert.ok(table.length >= 40, `${table.length} bad inputs`);
        console.log(`      ${table.length} bad inputs (${[...areas].map((a) => `${table.filter((c) => c.area === a).length} ${a}`).join(", ")}); ` +
            `${FUZZ_RUNS} fuzzed requests in each of the 2 Worker fuzz rows`);
    });

    it("rejects every one of them with an error naming the key or property, or an HTTP 3xx/4xx", async function () {
        const wrong: string[] = [];
        for (const c of table) {
            let message: string;
            try {
                message = await c.run();
            } catch (e) {
                wrong.push(`[${c.area}] ${c.what}: ${(e as Error).message}`);
                continue;
            }
            exposure.add(`${c.area}: ${c.what}`, message);
            if (!c.expect.test(message)) wrong.push(`[${c.area}] ${c.what}: got ${JSON.stringify(message.slice(0, 400))}, expected ${c.expect}`);
        }
        console.log(`      Worker fuzz answers: ${JSON.stringify(fuzzStatuses)}`);
        assert.deepEqual(wrong, []);
    });

    it("crashed nothing: the provider host and the Worker still answer", async () => {
        assert.equal(driver.host.process.exitCode, null);
        assert.equal(driver.host.process.signalCode, null);
        const alive = await driver.host.check(imageResource(providers.image, "alive", {}).urn, {}, { ...goodImage(), apiToken: SCOPED, __provider: providers.image.text });
        assert.deepEqual(alive.failures, []);
        const res = await worker.fetch("http://old-cdn.test/mapped/a.jpg");
        assert.equal(res.status, 301);
    });

    it("created nothing for any of them: zero uploads, deletes and row writes", async () => {
        assert.equal(emu.counters.uploads, 0);
        assert.equal(emu.counters.deletes, 0);
        assert.equal(emu.images.size, 0);
        assert.equal(driver.state.size, 0);
        assert.deepEqual(Object.keys(await worker.rows()), ["/mapped/a.jpg"]);
    });

    it("shows no secret (tokens, S3 key, Cloudinary and webhook secrets) in any message, response, state or host output", () => {
        assert.deepEqual(exposure.leaks(SECRETS), []);
    });
});
