import { strict as assert } from "assert";
import * as pulumi from "@pulumi/pulumi";
import { RedirectLayer, RedirectLayerArgs, RedirectMapping, rowsFromMappings, workerVars } from "../../components/redirect-layer";
import { bundleWorker } from "../../components/redirect/bundle";
import { RecordingMocks, settled, valueOf } from "../program/mocks";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const ZONE = "fedcba9876543210fedcba9876543210";
const ROWS_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:RedirectRows";

function mapping(n: number, from = 0, host = "https://old.example.com"): RedirectMapping {
    return Object.fromEntries(Array.from({ length: n }, (_, i) => [
        `${host}/images/${from + i}.jpg`, { imageId: `images/${from + i}.jpg`, deliveryUrl: `https://imagedelivery.net/h/images/${from + i}.jpg/public` },
    ]));
}

interface Binding { type: string; name: string; text?: string; id?: string }

describe("RedirectLayer under mocks (what preview declares)", () => {
    async function declare(args: Partial<RedirectLayerArgs>) {
        const mocks = new RecordingMocks();
        await pulumi.runtime.setMocks(mocks, "sourcing-kit", "dev", true);
        const layer = new RedirectLayer("redirects", {
            accountId: ACCOUNT, mappings: [mapping(3)], zoneId: ZONE, routePattern: "old.example.com/images/*",
            fallback: "origin", originUrl: "https://origin.example.com", ...args,
        });
        const outputs = {
            databaseId: await valueOf(layer.databaseId), shardCount: await valueOf(layer.shardCount),
            rowCount: await valueOf(layer.rowCount), hostname: await valueOf(layer.hostname),
        };
        await settled();
        const raw = (mocks.ofType("cloudflare:index/workersScript:WorkersScript")[0]?.inputs.bindings ?? []) as Binding[] | { value: Binding[] };
        // A secret anywhere in the list makes the engine hold the whole list as a secret (never plain text in state).
        const secretBindings = !Array.isArray(raw);
        const bindings = Array.isArray(raw) ? raw : raw.value;
        return { mocks, outputs, bindings, secretBindings, binding: (name: string) => bindings.find((b) => b.name === name) };
    }

    it("declares the D1 database, one shard, the module Worker with its D1 binding, and a route", async () => {
        const { mocks, outputs, binding, secretBindings } = await declare({});
        assert.equal(secretBindings, false);
        assert.equal(mocks.ofType("cloudflare:index/d1Database:D1Database").length, 1);
        const [script] = mocks.ofType("cloudflare:index/workersScript:WorkersScript");
        assert.equal(script.inputs.mainModule, "worker.js");
        assert.equal(script.inputs.content, bundleWorker());
        assert.equal(script.inputs.scriptName, "redirects");
        assert.deepEqual(binding("DB"), { type: "d1", name: "DB", id: "d1-uuid-0001" });
        assert.deepEqual(binding("FALLBACK"), { type: "plain_text", name: "FALLBACK", text: "origin" });
        assert.deepEqual(binding("ORIGIN_URL"), { type: "plain_text", name: "ORIGIN_URL", text: "https://origin.example.com" });
        assert.equal(binding("WEBHOOK_SECRET"), undefined);
        assert.deepEqual(["FLEXIBLE_VARIANTS", "MATCH_HOST", "CACHE_TTL", "REDIRECT_MAX_AGE"].map((n) => binding(n)?.text), ["false", "false", "300", "86400"]);
        const [route] = mocks.ofType("cloudflare:index/workersRoute:WorkersRoute");
        assert.deepEqual(route.inputs, { zoneId: ZONE, pattern: "old.example.com/images/*", script: "redirects" });
        const [rows] = mocks.ofType(ROWS_TYPE);
        assert.equal(rows.name, "redirects-rows-all");
        assert.equal(rows.inputs.shard, "redirects-rows-all");
        assert.equal(rows.inputs.databaseId, "d1-uuid-0001");
        assert.deepEqual(Object.keys(rows.inputs.rows as object).sort(), ["/images/0.jpg", "/images/1.jpg", "/images/2.jpg"]);
        assert.ok(typeof rows.inputs.__provider === "string" && (rows.inputs.__provider as string).length < 8000, "thin shim");
        assert.deepEqual(outputs, { databaseId: "d1-uuid-0001", shardCount: 1, rowCount: 3, hostname: "old.example.com" });
    });

    it("shards 2,500 rows from two sets into RedirectRows of at most 1,000, each row in exactly one", async () => {
        const { mocks, outputs } = await declare({ mappings: [mapping(1500), pulumi.output(mapping(1000, 1500))] });
        const shards = mocks.ofType(ROWS_TYPE);
        assert.ok(shards.length >= 3);
        const sizes = shards.map((s) => Object.keys(s.inputs.rows as object).length);
        assert.ok(sizes.every((n) => n <= 1000), `sizes ${sizes}`);
        assert.equal(sizes.reduce((a, b) => a + b, 0), 2500);
        assert.ok(shards.every((s) => /^redirects-rows-b[01]+$/.test(s.name) && s.inputs.shard === s.name));
        assert.equal(outputs.shardCount, shards.length);
        assert.equal(outputs.rowCount, 2500);
    });

    it("binds the webhook secret and the Images token as secret_text, and serves a custom domain", async () => {
        const { mocks, binding, secretBindings } = await declare({
            routePattern: undefined, customDomain: "img.example.com", fallback: "404", originUrl: undefined,
            webhookSecret: pulumi.secret("whsec"), apiToken: pulumi.secret("scoped-token"), webhookPath: "/hooks/images", flexibleVariants: true,
        });
        assert.equal(secretBindings, true);
        assert.deepEqual(binding("WEBHOOK_SECRET"), { type: "secret_text", name: "WEBHOOK_SECRET", text: "whsec" });
        assert.deepEqual(binding("IMAGES_API_TOKEN"), { type: "secret_text", name: "IMAGES_API_TOKEN", text: "scoped-token" });
        assert.equal(binding("WEBHOOK_PATH")?.text, "/hooks/images");
        assert.equal(binding("ACCOUNT_ID")?.text, ACCOUNT);
        assert.equal(binding("FLEXIBLE_VARIANTS")?.text, "true");
        assert.equal(binding("ORIGIN_URL"), undefined);
        const [rows] = mocks.ofType(ROWS_TYPE);
        assert.equal(typeof rows.inputs.apiToken, "object", "the shard's token is held as a secret");
        assert.equal(mocks.ofType("cloudflare:index/workersRoute:WorkersRoute").length, 0);
        const [domain] = mocks.ofType("cloudflare:index/workersCustomDomain:WorkersCustomDomain");
        assert.deepEqual(domain.inputs, { accountId: ACCOUNT, hostname: "img.example.com", service: "redirects", zoneId: ZONE });
    });

    it("writes into an existing D1 database and deploys no Worker when the team deploys it with wrangler", async () => {
        const { mocks, outputs } = await declare({
            databaseId: "6f1c1a40-0d5e-4c3b-9a57-2f7d2b3c4d5e", deployWorker: false, zoneId: undefined, routePattern: undefined,
        });
        assert.deepEqual(mocks.ofType("cloudflare:index/d1Database:D1Database"), [], "no database created");
        assert.deepEqual(mocks.ofType("cloudflare:index/workersScript:WorkersScript"), [], "no Worker");
        assert.deepEqual(mocks.ofType("cloudflare:index/workersRoute:WorkersRoute"), []);
        const [rows] = mocks.ofType(ROWS_TYPE);
        assert.equal(rows.inputs.databaseId, "6f1c1a40-0d5e-4c3b-9a57-2f7d2b3c4d5e");
        assert.deepEqual(outputs, { databaseId: "6f1c1a40-0d5e-4c3b-9a57-2f7d2b3c4d5e", shardCount: 1, rowCount: 3, hostname: undefined });
    });

    it("gives the Worker's settings as wrangler vars, the same values it binds when it deploys the Worker", async () => {
        const layerVars = workerVars({ fallback: "origin", originUrl: "https://origin.example.com", cacheTtlSeconds: 60 });
        assert.deepEqual(layerVars, {
            FALLBACK: "origin", FLEXIBLE_VARIANTS: "false", MATCH_HOST: "false", CACHE_TTL: "60", REDIRECT_MAX_AGE: "86400", ORIGIN_URL: "https://origin.example.com",
        });
        const { binding } = await declare({ cacheTtlSeconds: 60 });
        for (const [name, text] of Object.entries(layerVars)) assert.deepEqual(binding(name), { type: "plain_text", name, text });
    });

    it("rejects contradictory settings naming the argument", async () => {
        await pulumi.runtime.setMocks(new RecordingMocks(), "sourcing-kit", "dev", true);
        const base: RedirectLayerArgs = { accountId: ACCOUNT, mappings: [], zoneId: ZONE, routePattern: "a.example.com/*", fallback: "404" };
        assert.throws(() => new RedirectLayer("a", { ...base, customDomain: "b.example.com" }), /exactly one of routePattern/);
        assert.throws(() => new RedirectLayer("b", { ...base, fallback: "origin" }), /needs originUrl/);
        assert.throws(() => new RedirectLayer("c", { ...base, webhookSecret: "s" }), /webhookSecret needs apiToken/);
        assert.throws(() => new RedirectLayer("d", { ...base, shardSize: 5000 }), /shardSize 5000/);
        assert.throws(() => new RedirectLayer("e", { ...base, cacheTtlSeconds: -1 }), /cacheTtlSeconds -1 must be a whole number/);
        assert.throws(() => new RedirectLayer("f", { ...base, databaseId: "6f1c1a40-0d5e-4c3b-9a57-2f7d2b3c4d5e", databaseName: "x" }), /set only one/);
        assert.throws(() => new RedirectLayer("g", { ...base, deployWorker: false }), /routePattern, zoneId have no effect with deployWorker false/);
    });
});

describe("rows from mappings (pure)", () => {
    it("normalises old URLs into keys and merges spellings of one path", () => {
        const rows = rowsFromMappings([
            { "https://a.example.com//x/Y.jpg/": { imageId: "y", deliveryUrl: "https://imagedelivery.net/h/y/public" } },
            { "/x/%59.jpg": { imageId: "y", deliveryUrl: "https://imagedelivery.net/h/y/public" } },
        ]);
        assert.deepEqual(rows, { "/x/Y.jpg": "https://imagedelivery.net/h/y/public" });
    });

    it("names both old URLs when they meet on one key with different images", () => {
        assert.throws(() => rowsFromMappings([
            { "https://a.example.com/x.jpg": { imageId: "a", deliveryUrl: "https://imagedelivery.net/h/a/public" } },
            { "https://b.example.com/x.jpg": { imageId: "b", deliveryUrl: "https://imagedelivery.net/h/b/public" } },
        ]), /mappings\[1\]: old URLs "https:\/\/a.example.com\/x.jpg" and "https:\/\/b.example.com\/x.jpg" both normalise to "\/x.jpg".*set matchHost/);
    });

    it("keys by host when matchHost is set", () => {
        const rows = rowsFromMappings([
            { "https://A.example.com/x.jpg": { imageId: "a", deliveryUrl: "https://imagedelivery.net/h/a/public" } },
            { "https://b.example.com/x.jpg": { imageId: "b", deliveryUrl: "https://imagedelivery.net/h/b/public" } },
        ], true);
        assert.deepEqual(Object.keys(rows), ["a.example.com/x.jpg", "b.example.com/x.jpg"]);
    });
});
