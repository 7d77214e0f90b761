import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { defaultSetName, loadStackConfig, parseStackConfig, type RawStackConfig } from "../../config";

const NOW = new Date("2026-11-28T12:00:00Z");
const S3_DEV = { kind: "s3", bucket: "acme-media-dev", prefix: "products/", region: "eu-west-1", access: "private" };

/** A valid stack: every case below changes one thing (or several) and names the problems it expects. */
function stack(values: Record<string, string | undefined>, opts: { secret?: string[]; env?: Record<string, string> } = {}): RawStackConfig {
    const base: Record<string, string | undefined> = {
        "cloudflare:apiToken": "bootstrap-token-value",
        "sourcing-kit:accountId": "9a7806061c88ada191ed06f989cc3dac",
        "sourcing-kit:accountHash": "Vi7wi5KSItxGFsWRG2Us6Q",
        "sourcing-kit:sources": JSON.stringify([S3_DEV]),
    };
    const merged = { ...base, ...values };
    const defined = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as Record<string, string>;
    return {
        values: defined,
        secretKeys: new Set(opts.secret ?? ["cloudflare:apiToken", "sourcing-kit:cloudinaryApiSecret", "sourcing-kit:webhookSecret"]),
        env: opts.env ?? {},
        now: NOW,
    };
}

const json = (value: unknown): string => JSON.stringify(value);
const REDIRECTS = { zoneId: "3f2a9c0d8b7e6f5a4b3c2d1e0f9a8b7c", routePattern: "dev.acme-shop.example/media/*", originUrl: "https://origin.acme-shop.example" };

function problemsOf(raw: RawStackConfig): string[] {
    const result = parseStackConfig(raw);
    assert.strictEqual(result.ok, false, "expected the config to be rejected");
    return (result as { problems: string[] }).problems;
}

describe("stack config: the bad-config table (every problem at once, by config path)", () => {
    const table: { name: string; raw: RawStackConfig; problems: string[] }[] = [
        {
            name: "a source without its required field",
            raw: stack({ "sourcing-kit:sources": json([{ kind: "urls", urls: ["https://cdn.example.com/a.jpg"] }, { kind: "s3" }]) }),
            problems: ["sourcing-kit:sources[1].bucket: required"],
        },
        {
            name: "an unknown source kind",
            raw: stack({ "sourcing-kit:sources": json([{ kind: "ftp", host: "files.example.com" }]) }),
            problems: ['sourcing-kit:sources[0].kind: must be one of urls, manifest, s3, cloudinary, imgix, local (got "ftp")'],
        },
        {
            name: "a source without a kind",
            raw: stack({ "sourcing-kit:sources": json([{ bucket: "acme" }]) }),
            problems: ["sourcing-kit:sources[0].kind: required (one of urls, manifest, s3, cloudinary, imgix, local)"],
        },
        {
            name: "a misspelt source key",
            raw: stack({ "sourcing-kit:sources": json([{ kind: "s3", bucket: "acme", regoin: "eu-west-1" }]) }),
            problems: ["sourcing-kit:sources[0].regoin: unknown key"],
        },
        {
            name: "a Cloudinary secret written into sources, in plain text",
            raw: stack({ "sourcing-kit:sources": json([{ kind: "cloudinary", cloudName: "acme", apiKey: "1234", apiSecret: "shh" }]), "sourcing-kit:cloudinaryApiSecret": "from-config" }),
            problems: ["sourcing-kit:sources[0].apiSecret: do not put secrets in sources (they would sit in Pulumi.<stack>.yaml in plain text); run pulumi config set --secret sourcing-kit:cloudinaryApiSecret <secret>, or set CLOUDINARY_API_SECRET"],
        },
        {
            name: "a Cloudinary source with no secret anywhere",
            raw: stack({ "sourcing-kit:sources": json([S3_DEV, { kind: "cloudinary", cloudName: "acme", apiKey: "1234" }]) }),
            problems: ["sourcing-kit:cloudinaryApiSecret: required by sourcing-kit:sources[1] (kind cloudinary); run pulumi config set --secret sourcing-kit:cloudinaryApiSecret <secret>, or set CLOUDINARY_API_SECRET"],
        },
        {
            name: "no account ID and no account hash",
            raw: stack({ "sourcing-kit:accountId": undefined, "sourcing-kit:accountHash": undefined }),
            problems: [
                "sourcing-kit:accountId: required (dashboard > Account home > Account ID); run pulumi config set sourcing-kit:accountId <id>",
                "sourcing-kit:accountHash: required (Images > Overview > Developer resources > Account hash); run pulumi config set sourcing-kit:accountHash <hash>",
            ],
        },
        {
            name: "an account ID that is not one (real API)",
            raw: stack({ "sourcing-kit:accountId": "acme-prod" }),
            problems: ['sourcing-kit:accountId: must be the 32-character hex account ID (dashboard > Account home > Account ID), got "acme-prod"'],
        },
        {
            name: "no sources at all",
            raw: stack({ "sourcing-kit:sources": undefined }),
            problems: ["sourcing-kit:sources: required (a list of sources, e.g. - kind: s3 with bucket: my-bucket; see the README's configuration reference)"],
        },
        {
            name: "an empty source list",
            raw: stack({ "sourcing-kit:sources": "[]" }),
            problems: ["sourcing-kit:sources: must list at least one source"],
        },
        {
            name: "the bootstrap token in plain text",
            raw: stack({}, { secret: [] }),
            problems: ["cloudflare:apiToken: must be stored as a secret; run pulumi config set --secret cloudflare:apiToken <value> (or set CLOUDFLARE_API_TOKEN instead)"],
        },
        {
            name: "no bootstrap token in config or environment",
            raw: stack({ "cloudflare:apiToken": undefined }),
            problems: ["cloudflare:apiToken: required; run pulumi config set --secret cloudflare:apiToken <token>, or set CLOUDFLARE_API_TOKEN"],
        },
        {
            name: "bad scalar values: onConflict, sample, scopedToken",
            raw: stack({ "sourcing-kit:onConflict": "skip", "sourcing-kit:sample": "0", "sourcing-kit:scopedToken": "yes" }),
            problems: [
                'sourcing-kit:scopedToken: must be true or false (got "yes")',
                'sourcing-kit:sample: must be a whole number of at least 1 (got "0")',
                'sourcing-kit:onConflict: must be one of adopt, overwrite, fail (got "skip")',
            ],
        },
        {
            name: "a request timeout that is not a whole number of milliseconds",
            raw: stack({ "sourcing-kit:requestTimeoutMs": "30s" }),
            problems: ['sourcing-kit:requestTimeoutMs: must be a whole number of at least 1 (got "30s")'],
        },
        {
            name: "a misspelt top-level key",
            raw: stack({ "sourcing-kit:sampel": "10" }),
            problems: ["sourcing-kit:sampel: unknown key (did you mean sourcing-kit:sample?)"],
        },
        {
            name: "redirects with both a route and a custom domain, and no origin for the fallback",
            raw: stack({ "sourcing-kit:redirects": json({ zoneId: REDIRECTS.zoneId, routePattern: REDIRECTS.routePattern, customDomain: "img.acme-shop.example" }) }),
            problems: [
                "sourcing-kit:redirects: set exactly one of routePattern (a route on a proxied hostname in front of the old origin) or customDomain (the Worker becomes the hostname's origin)",
                'sourcing-kit:redirects.originUrl: required when fallback is "origin" (unmapped paths are fetched from it); or set fallback: "404"',
            ],
        },
        {
            name: "redirects with a bad zone, a bad fallback and the webhook secret inline",
            raw: stack({ "sourcing-kit:redirects": json({ ...REDIRECTS, zoneId: "acme.example", fallback: "410", webhookSecret: "shh" }) }),
            problems: [
                "sourcing-kit:redirects.webhookSecret: do not put secrets in redirects; run pulumi config set --secret sourcing-kit:webhookSecret <secret>",
                "sourcing-kit:redirects.zoneId: must be the zone's 32-character hex ID (dashboard > the zone > Overview > Zone ID)",
                'sourcing-kit:redirects.fallback: must be "origin" (unmapped paths go to the old origin) or "404"',
            ],
        },
        {
            name: "a route without its zone",
            raw: stack({ "sourcing-kit:redirects": json({ routePattern: REDIRECTS.routePattern, fallback: "404" }) }),
            problems: ["sourcing-kit:redirects.zoneId: required with routePattern: the zone's 32-character hex ID (dashboard > the zone > Overview > Zone ID)"],
        },
        {
            name: "token options that cannot work",
            raw: stack({ "sourcing-kit:tokenExpiresOn": "2025-01-01T00:00:00Z", "sourcing-kit:tokenAllowedIps": json(["203.0.113.0/24", "10.0.0.0/33", "office"]) }),
            problems: [
                "sourcing-kit:tokenExpiresOn: 2025-01-01T00:00:00Z is in the past; the token would be dead on arrival",
                'sourcing-kit:tokenAllowedIps[1]: must be an IPv4 or IPv6 CIDR such as 203.0.113.0/24 (got "10.0.0.0/33")',
                'sourcing-kit:tokenAllowedIps[2]: must be an IPv4 or IPv6 CIDR such as 203.0.113.0/24 (got "office")',
            ],
        },
        {
            name: "the emulator's base URL with a scoped token and redirects",
            raw: stack({ "sourcing-kit:apiBaseUrl": "http://127.0.0.1:8787/client/v4", "sourcing-kit:accountId": "local-account", "sourcing-kit:redirects": json(REDIRECTS) }),
            problems: [
                "sourcing-kit:scopedToken: set it to false with a custom sourcing-kit:apiBaseUrl: tokens are created on the real Cloudflare API (the emulator has none)",
                "sourcing-kit:redirects: with a custom sourcing-kit:apiBaseUrl set redirects.databaseId (an existing D1 database) and redirects.deployWorker false: creating D1 databases and Workers needs the real Cloudflare API",
            ],
        },
        {
            name: "an existing D1 database given by name and ID, a Worker route with deployWorker false, and a webhook for that Worker",
            raw: stack({
                "sourcing-kit:redirects": json({ ...REDIRECTS, databaseId: "not-a-uuid", databaseName: "mine", deployWorker: false }),
                "sourcing-kit:webhookSecret": "whsec",
            }),
            problems: [
                "sourcing-kit:redirects.databaseId: must be the D1 database's UUID (dashboard > Storage & Databases > D1 > the database, or `wrangler d1 list`)",
                "sourcing-kit:redirects.databaseName: names the database the stack creates; with databaseId the stack uses that existing database instead: remove one of the two",
                "sourcing-kit:redirects.routePattern: has no effect with deployWorker false (the Worker is deployed with wrangler, which sets its route); remove it, or set deployWorker true",
                "sourcing-kit:redirects.zoneId: has no effect with deployWorker false (the Worker is deployed with wrangler, which sets its route); remove it, or set deployWorker true",
                "sourcing-kit:webhookSecret: the stack does not deploy the Worker (redirects.deployWorker false), so it cannot give it the secret; remove it and run wrangler secret put WEBHOOK_SECRET (README \"Deploying the Worker yourself\")",
            ],
        },
        {
            name: "an unknown mode and batch sizes out of range, stack-wide and per source",
            raw: stack({
                "sourcing-kit:mode": "bulk", "sourcing-kit:batchSize": "0",
                "sourcing-kit:sources": json([{ ...S3_DEV, mode: "batches", batchSize: 6000 }]),
            }),
            problems: [
                'sourcing-kit:mode: must be image (one resource per image, the default) or batch (resources of up to batchSize images; for 10,000 images and more) (got "bulk")',
                'sourcing-kit:batchSize: must be a whole number from 1 to 5000 (got "0")',
                "sourcing-kit:sources[0].mode: must be image (one resource per image) or batch (resources of up to batchSize images)",
                "sourcing-kit:sources[0].batchSize: must be a whole number from 1 to 5000 (a batch's state is rewritten on each change)",
            ],
        },
        {
            name: "delivery base URLs Cloudflare does not serve images at",
            raw: stack({ "sourcing-kit:deliveryBaseUrl": "https://images.example.com/cdn" }),
            problems: [
                'sourcing-kit:deliveryBaseUrl: on your own domain must end in /cdn-cgi/imagedelivery (the zone must be on the same Cloudflare account as the images), such as https://imagedelivery.net or https://images.example.com/cdn-cgi/imagedelivery (got "https://images.example.com/cdn")',
            ],
        },
        {
            name: "a plain-http delivery base URL for the real API",
            raw: stack({ "sourcing-kit:deliveryBaseUrl": "http://example.com/cdn-cgi/imagedelivery" }),
            problems: [
                'sourcing-kit:deliveryBaseUrl: must use https, such as https://imagedelivery.net or https://images.example.com/cdn-cgi/imagedelivery (got "http://example.com/cdn-cgi/imagedelivery")',
            ],
        },
        {
            name: "two sources that would get the same resource name",
            raw: stack({ "sourcing-kit:sources": json([{ kind: "urls", urls: ["https://a.example/1.jpg"] }, { kind: "urls", urls: ["https://b.example/2.jpg"] }]) }),
            problems: ['sourcing-kit:sources[1].name: "urls" is also the name of sourcing-kit:sources[0]; give each source a distinct name'],
        },
        {
            name: "a bad per-source option and a bad rate limit",
            raw: stack({
                "sourcing-kit:sources": json([{ ...S3_DEV, name: "Product Photos", onConflict: "replace" }]),
                "sourcing-kit:rateLimit": json({ requests: 0, windowSeconds: 300 }),
            }),
            problems: [
                "sourcing-kit:rateLimit.requests: must be greater than 0",
                "sourcing-kit:sources[0].name: must be 1-63 lowercase letters, digits or '-', starting with a letter or digit (it names the resources)",
                'sourcing-kit:sources[0].onConflict: must be one of adopt, overwrite, fail (got "replace")',
            ],
        },
        {
            name: "options that would silently do nothing",
            raw: stack({ "sourcing-kit:scopedToken": "false", "sourcing-kit:tokenExpiresOn": "2027-01-31T00:00:00Z", "sourcing-kit:webhookSecret": "whsec" }),
            problems: [
                "sourcing-kit:tokenExpiresOn: has no effect with sourcing-kit:scopedToken false; remove it",
                "sourcing-kit:webhookSecret: has no effect without sourcing-kit:redirects (webhooks are served by the redirect Worker); remove it or configure redirects",
            ],
        },
        {
            name: "webhooks without the scoped token the Worker would use",
            raw: stack({ "sourcing-kit:scopedToken": "false", "sourcing-kit:redirects": json({ ...REDIRECTS, flexibleVariants: "yes" }), "sourcing-kit:webhookSecret": "whsec" }),
            problems: [
                'sourcing-kit:redirects.flexibleVariants: must be a boolean (got "yes")',
                "sourcing-kit:webhookSecret: needs sourcing-kit:scopedToken true: the Worker handles webhooks with the scoped token (the bootstrap token never goes into a Worker)",
            ],
        },
        {
            name: "webhooks with a scoped token limited to IP ranges the Worker does not call from",
            raw: stack({ "sourcing-kit:redirects": json(REDIRECTS), "sourcing-kit:webhookSecret": "whsec", "sourcing-kit:tokenAllowedIps": json(["203.0.113.0/24"]) }),
            problems: [
                "sourcing-kit:tokenAllowedIps: the redirect Worker calls the Images API with the scoped token from Cloudflare's edge, outside these addresses, so every webhook would fail; remove sourcing-kit:tokenAllowedIps or sourcing-kit:webhookSecret",
            ],
        },
        {
            name: "a source field with the wrong type, and a refinement from the source schema",
            raw: stack({ "sourcing-kit:sources": json([{ kind: "s3", bucket: "s3://acme/photos", forcePathStyle: "yes" }]) }),
            problems: [
                "sourcing-kit:sources[0].bucket: bucket is a bucket name, without s3:// or slashes (put the folder in prefix)",
                'sourcing-kit:sources[0].forcePathStyle: must be a boolean (got "yes")',
            ],
        },
        {
            name: "a partition count of 0 and a negative index",
            raw: stack({ "sourcing-kit:partition": json({ index: -1, count: 0 }) }),
            problems: [
                "sourcing-kit:partition.count: must be a whole number from 1 to 1024 (got number 0)",
                "sourcing-kit:partition.index: must be a whole number from 0 to count - 1 (got number -1)",
            ],
        },
        {
            name: "a partition index equal to the count (partitions are numbered from 0)",
            raw: stack({ "sourcing-kit:partition": json({ index: 8, count: 8 }) }),
            problems: ["sourcing-kit:partition.index: must be a whole number from 0 to 7 (partitions are numbered from 0, so the last of 8 is 7) (got number 8)"],
        },
        {
            name: "a partition without its count",
            raw: stack({ "sourcing-kit:partition": json({ index: 2 }) }),
            problems: ["sourcing-kit:partition.count: required: how many stacks share the library, from 1 to 1024; e.g. pulumi config set --path sourcing-kit:partition.index 3 and pulumi config set --path sourcing-kit:partition.count 8 (stack 3 of 8)"],
        },
        {
            name: "a fractional partition index, a count over 1024 and an unknown partition key",
            raw: stack({ "sourcing-kit:partition": json({ index: 1.5, count: 2048, of: 8 }) }),
            problems: [
                "sourcing-kit:partition.of: unknown key (a partition has only index and count)",
                "sourcing-kit:partition.count: must be a whole number from 1 to 1024 (got number 2048)",
                "sourcing-kit:partition.index: must be a whole number from 0 to count - 1 (got number 1.5)",
            ],
        },
        {
            name: "a partition written as a string",
            raw: stack({ "sourcing-kit:partition": json("3/8") }),
            problems: ['sourcing-kit:partition: must be a mapping with index and count, e.g. pulumi config set --path sourcing-kit:partition.index 3 and pulumi config set --path sourcing-kit:partition.count 8 (stack 3 of 8) (got "3/8")'],
        },
        {
            name: "partitions with redirects into a database each stack would create, and a second Worker",
            raw: stack({ "sourcing-kit:partition": json({ index: 3, count: 8 }), "sourcing-kit:redirects": json(REDIRECTS) }),
            problems: [
                "sourcing-kit:redirects.databaseId: required with sourcing-kit:partition count 8: every partition's stack writes its rows into one D1 database. " +
                    "Create it once (wrangler d1 create <name>) and set its UUID in every partition's stack (pulumi config set --path sourcing-kit:redirects.databaseId <uuid>)",
                "sourcing-kit:redirects.deployWorker: only partition 0 deploys the redirect Worker (it serves every partition's rows); " +
                    "set sourcing-kit:redirects.deployWorker false in the stack of partition 3, with no routePattern, customDomain, zoneId or scriptName",
            ],
        },
    ];

    for (const { name, raw, problems } of table) {
        it(`rejects ${name}`, () => {
            assert.deepStrictEqual(problemsOf(raw), problems);
        });
    }

    it("reports the problems of every key in one pass, not just the first", () => {
        const problems = problemsOf(stack({
            "cloudflare:apiToken": undefined,
            "sourcing-kit:accountId": undefined,
            "sourcing-kit:onConflict": "skip",
            "sourcing-kit:sources": json([{ kind: "s3" }, { kind: "local" }]),
        }));
        assert.deepStrictEqual(problems, [
            "cloudflare:apiToken: required; run pulumi config set --secret cloudflare:apiToken <token>, or set CLOUDFLARE_API_TOKEN",
            "sourcing-kit:accountId: required (dashboard > Account home > Account ID); run pulumi config set sourcing-kit:accountId <id>",
            'sourcing-kit:onConflict: must be one of adopt, overwrite, fail (got "skip")',
            "sourcing-kit:sources[0].bucket: required",
            "sourcing-kit:sources[1].dir: required",
        ]);
    });
});

describe("stack config: partitions", () => {
    const DB = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    const configOf = (raw: RawStackConfig) => {
        const result = parseStackConfig(raw);
        assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
        return result.config;
    };

    it("takes index and count, as numbers or as the strings config set --path may store", () => {
        assert.deepStrictEqual(configOf(stack({ "sourcing-kit:partition": json({ index: 3, count: 8 }) })).partition, { index: 3, count: 8 });
        assert.deepStrictEqual(configOf(stack({ "sourcing-kit:partition": json({ index: "0", count: "2" }) })).partition, { index: 0, count: 2 });
    });

    it("treats count 1 as the whole library (no partition, so names stay an unpartitioned stack's)", () => {
        assert.equal(configOf(stack({ "sourcing-kit:partition": json({ index: 0, count: 1 }) })).partition, undefined);
        assert.equal(configOf(stack({})).partition, undefined);
    });

    it("accepts partitions sharing one existing D1 database, the Worker deployed by partition 0 only", () => {
        const withDb = { ...REDIRECTS, databaseId: DB };
        assert.equal(configOf(stack({ "sourcing-kit:partition": json({ index: 0, count: 8 }), "sourcing-kit:redirects": json(withDb) })).redirects?.deployWorker, true);
        const rowsOnly = { databaseId: DB, deployWorker: false, fallback: "404" };
        assert.deepStrictEqual(configOf(stack({ "sourcing-kit:partition": json({ index: 7, count: 8 }), "sourcing-kit:redirects": json(rowsOnly) })).partition, { index: 7, count: 8 });
    });
});

describe("stack config: valid stacks", () => {
    it("applies the documented defaults", () => {
        const result = parseStackConfig(stack({}));
        assert.ok(result.ok);
        const c = result.config;
        assert.strictEqual(c.apiBaseUrl, undefined);
        assert.strictEqual(c.scopedToken, true);
        assert.strictEqual(c.useBatchApi, false);
        assert.strictEqual(c.onConflict, "adopt");
        assert.strictEqual(c.retainOnDelete, false);
        assert.strictEqual(c.exportMapping, false);
        assert.deepStrictEqual(c.rateLimit, { requests: 1100, windowSeconds: 300 });
        assert.strictEqual(c.redirects, undefined);
        assert.strictEqual(c.bootstrapTokenInConfig, true);
        assert.deepStrictEqual(c.sources.map((s) => [s.name, s.configPath, s.onConflict]), [["s3-acme-media-dev-products", "sourcing-kit:sources[0]", "adopt"]]);
    });

    it("lets each source override the stack-wide sample and onConflict", () => {
        const result = parseStackConfig(stack({
            "sourcing-kit:sample": "25",
            "sourcing-kit:onConflict": "fail",
            "sourcing-kit:sources": json([S3_DEV, { kind: "local", dir: "./photos", name: "photos", sample: 3, onConflict: "overwrite", idPrefix: "legacy" }]),
        }));
        assert.ok(result.ok);
        assert.deepStrictEqual(result.config.sources.map((s) => [s.name, s.sample, s.onConflict, s.idPrefix]), [
            ["s3-acme-media-dev-products", 25, "fail", undefined],
            ["photos", 3, "overwrite", "legacy"],
        ]);
    });

    it("takes the bootstrap token and the Cloudinary secret from the standard environment variables", () => {
        const result = parseStackConfig(stack(
            { "cloudflare:apiToken": undefined, "sourcing-kit:sources": json([{ kind: "cloudinary", cloudName: "acme", apiKey: "1234" }]) },
            { env: { CLOUDFLARE_API_TOKEN: "env-token", CLOUDINARY_API_SECRET: "env-secret" } },
        ));
        assert.ok(result.ok);
        assert.strictEqual(result.config.bootstrapTokenInConfig, false);
        assert.deepStrictEqual(result.config.sources[0]!.source, { kind: "cloudinary", cloudName: "acme", apiKey: "1234", apiSecret: "env-secret" });
    });

    it("accepts the emulator setup: a custom base URL, any account ID, no scoped token", () => {
        const result = parseStackConfig(stack({
            "cloudflare:apiToken": undefined,
            "sourcing-kit:apiBaseUrl": "http://127.0.0.1:8787/client/v4/",
            "sourcing-kit:accountId": "local-account",
            "sourcing-kit:accountHash": "local-hash",
            "sourcing-kit:scopedToken": "false",
            "sourcing-kit:sources": json([{ kind: "local", dir: "examples/images" }]),
        }, { env: { CLOUDFLARE_API_TOKEN: "local-token" } }));
        assert.ok(result.ok);
        assert.strictEqual(result.config.apiBaseUrl, "http://127.0.0.1:8787/client/v4");
        assert.strictEqual(result.config.sources[0]!.name, "local-images");
    });

    it("accepts redirects with a custom domain and a 404 fallback, a webhook secret, and a token expiry", () => {
        const result = parseStackConfig(stack({
            "sourcing-kit:redirects": json({ customDomain: "img.acme-shop.example", fallback: "404", redirectMaxAgeSeconds: 300 }),
            "sourcing-kit:webhookSecret": "whsec",
            "sourcing-kit:tokenExpiresOn": "2027-01-31T00:00:00Z",
        }));
        assert.ok(result.ok);
        assert.deepStrictEqual(result.config.redirects, { customDomain: "img.acme-shop.example", fallback: "404", redirectMaxAgeSeconds: 300, deployWorker: true }, "a custom domain needs no zone ID");
        assert.strictEqual(result.config.webhookSecret, "whsec");
    });

    it("accepts an existing D1 database and a Worker the team deploys itself, also against the emulator", () => {
        const redirects = { fallback: "origin", originUrl: "http://127.0.0.1:8790", databaseId: "6f1c1a40-0d5e-4c3b-9a57-2f7d2b3c4d5e", deployWorker: false };
        const result = parseStackConfig(stack({
            "cloudflare:apiToken": undefined,
            "sourcing-kit:apiBaseUrl": "http://127.0.0.1:8787/client/v4",
            "sourcing-kit:deliveryBaseUrl": "http://127.0.0.1:8787/cdn-cgi/imagedelivery/",
            "sourcing-kit:accountId": "local-account",
            "sourcing-kit:scopedToken": "false",
            "sourcing-kit:redirects": json(redirects),
        }, { env: { CLOUDFLARE_API_TOKEN: "local-token" } }));
        assert.ok(result.ok, JSON.stringify(result));
        assert.deepStrictEqual(result.config.redirects, redirects);
        assert.strictEqual(result.config.deliveryBaseUrl, "http://127.0.0.1:8787/cdn-cgi/imagedelivery", "trailing slash dropped");
    });

    it("takes the stack's mode and batch size as each source's default, a source's own winning", () => {
        const defaults = parseStackConfig(stack({}));
        assert.ok(defaults.ok);
        assert.deepStrictEqual(defaults.config.sources.map((s) => [s.mode, s.batchSize]), [["image", 1000]]);
        const result = parseStackConfig(stack({
            "sourcing-kit:mode": "batch", "sourcing-kit:batchSize": "2000",
            "sourcing-kit:sources": json([S3_DEV, { kind: "local", dir: "./photos", name: "photos", mode: "image", batchSize: 500 }]),
        }));
        assert.ok(result.ok, JSON.stringify(result));
        assert.deepStrictEqual(result.config.sources.map((s) => [s.name, s.mode, s.batchSize]), [["s3-acme-media-dev-products", "batch", 2000], ["photos", "image", 500]]);
    });

    it("delivers on imagedelivery.net by default, or on the user's own zone", () => {
        const defaults = parseStackConfig(stack({}));
        assert.ok(defaults.ok);
        assert.strictEqual(defaults.config.deliveryBaseUrl, "https://imagedelivery.net");
        assert.strictEqual(defaults.config.redirects, undefined);
        const own = parseStackConfig(stack({ "sourcing-kit:deliveryBaseUrl": "https://example.com/cdn-cgi/imagedelivery" }));
        assert.ok(own.ok);
        assert.strictEqual(own.config.deliveryBaseUrl, "https://example.com/cdn-cgi/imagedelivery");
        const routed = parseStackConfig(stack({ "sourcing-kit:redirects": json({ customDomain: "img.acme-shop.example", fallback: "404" }) }));
        assert.ok(routed.ok);
        assert.strictEqual(routed.config.redirects?.deployWorker, true, "the Worker is deployed unless deployWorker is false");
    });

    it("accepts a scoped token limited to IP ranges when no Worker needs it", () => {
        const result = parseStackConfig(stack({
            "sourcing-kit:redirects": json({ customDomain: "img.acme-shop.example", fallback: "404" }),
            "sourcing-kit:tokenAllowedIps": json(["203.0.113.0/24", "2001:db8::/32"]),
        }));
        assert.ok(result.ok);
        assert.deepStrictEqual(result.config.tokenAllowedIps, ["203.0.113.0/24", "2001:db8::/32"]);
    });
});

describe("stack config: default image-set names", () => {
    const cases: [Record<string, unknown> & { kind: string }, string][] = [
        [{ kind: "s3", bucket: "Acme_Media", prefix: "products/shoes/" }, "s3-acme-media-products-shoes"],
        [{ kind: "cloudinary", cloudName: "acme" }, "cloudinary-acme"],
        [{ kind: "imgix", domain: "acme.imgix.net" }, "imgix-acme-imgix-net"],
        [{ kind: "local", dir: "/srv/www/uploads" }, "local-uploads"],
        [{ kind: "manifest", path: "exports/legacy-cdn.csv" }, "manifest-legacy-cdn"],
        [{ kind: "urls", urls: [] }, "urls"],
    ];
    for (const [source, name] of cases) {
        it(`names the ${source.kind} source ${name}, from what it points at rather than its position`, () => {
            assert.strictEqual(defaultSetName(source), name);
        });
    }
});

describe("stack config: loading from the Pulumi runtime", () => {
    after(() => pulumi.runtime.setAllConfig({}, []));

    it("stops the program with a RunError listing every problem, and never echoes a secret", async () => {
        await pulumi.runtime.setMocks({ newResource: () => ({ id: undefined, state: {} }), call: () => ({}) }, "sourcing-kit", "badstack", true);
        pulumi.runtime.setAllConfig({
            "cloudflare:apiToken": "super-secret-bootstrap",
            "sourcing-kit:accountHash": "Vi7wi5KSItxGFsWRG2Us6Q",
            "sourcing-kit:sources": json([{ kind: "s3" }]),
        }, ["cloudflare:apiToken"]);
        assert.throws(() => loadStackConfig({}, NOW), (err: unknown) => {
            assert.ok(pulumi.RunError.isInstance(err));
            const message = (err as Error).message;
            assert.strictEqual(message, [
                "the stack configuration has 2 problems:",
                "  - sourcing-kit:accountId: required (dashboard > Account home > Account ID); run pulumi config set sourcing-kit:accountId <id>",
                "  - sourcing-kit:sources[0].bucket: required",
                "fix them with pulumi config set (add --secret for secrets, --path for nested keys) or in Pulumi.badstack.yaml",
            ].join("\n"));
            assert.ok(!message.includes("super-secret-bootstrap"));
            return true;
        });
    });
});
