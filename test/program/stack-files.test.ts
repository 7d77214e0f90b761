import * as assert from "assert";
import { DEFAULT_API_BASE_URL, KNOWN_KEYS, parseStackConfig, PROJECT } from "../../config";
import { projectFile, readYaml, stackConfig } from "./stack-files";
import { LOCAL } from "../../local/start";

const NOW = new Date("2026-11-28T12:00:00Z");
const REQUIRED = ["sourcing-kit:accountId", "sourcing-kit:accountHash", "sourcing-kit:sources"];
const SECRET_KEYS = ["cloudflare:apiToken", "sourcing-kit:cloudinaryApiSecret", "sourcing-kit:webhookSecret", "aws:secretKey", "aws:token"];

describe("Pulumi.yaml and the stack files", () => {
    it("declares the nodejs TypeScript runtime for project sourcing-kit", () => {
        const project = projectFile();
        assert.strictEqual(project.name, PROJECT);
        assert.deepStrictEqual(project.runtime, { name: "nodejs", options: { typescript: true, packagemanager: "npm" } });
    });

    it("declares only keys the program knows, each with a description and a default; the required keys not at all", () => {
        for (const [key, declaration] of Object.entries(projectFile().config)) {
            assert.ok(key.startsWith(`${PROJECT}:`), `${key}: only project keys can be declared`);
            assert.ok((KNOWN_KEYS as readonly string[]).includes(key.slice(PROJECT.length + 1)), `${key}: unknown to config.ts`);
            assert.ok(declaration.description && declaration.description.length > 20, `${key}: needs a description`);
            // The real CLI stops at the first declared key without a value, before the program can list every problem
            // (test/engine/config.test.ts): a declared key needs a default, and a required key stays undeclared.
            assert.ok(declaration.default !== undefined, `${key}: a declared key needs a default`);
        }
        assert.deepStrictEqual(REQUIRED.filter((k) => k in projectFile().config), []);
    });

    it("follows the CLI's project schema: known attributes, simple types, defaults of the declared type", () => {
        const typeOf = (v: unknown) => (Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v);
        for (const [key, declaration] of Object.entries(projectFile().config)) {
            for (const attribute of Object.keys(declaration)) {
                assert.ok(["type", "items", "description", "secret", "default"].includes(attribute), `${key}: attribute ${attribute}`);
            }
            if (declaration.type === undefined) continue; // structured values (objects, lists of objects) stay untyped
            assert.ok(["string", "integer", "boolean", "array"].includes(declaration.type), `${key}: type ${declaration.type}`);
            if (declaration.type === "array") assert.ok(declaration.items, `${key}: arrays need items`);
            if (declaration.default !== undefined) assert.strictEqual(typeOf(declaration.default), declaration.type, `${key}: default`);
        }
    });

    it("keeps the project defaults equal to the program's own defaults (a stack that sets nothing optional)", () => {
        const dev = stackConfig("dev");
        const result = parseStackConfig({
            values: Object.fromEntries(REQUIRED.map((k) => [k, dev[k]!]).concat([["cloudflare:apiToken", "t"]])),
            secretKeys: new Set(["cloudflare:apiToken"]), env: {}, now: NOW,
        });
        assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
        const c = result.config;
        const programDefaults: Record<string, unknown> = {
            "sourcing-kit:scopedToken": c.scopedToken,
            "sourcing-kit:useBatchApi": c.useBatchApi,
            "sourcing-kit:onConflict": c.onConflict,
            "sourcing-kit:retainOnDelete": c.retainOnDelete,
            "sourcing-kit:exportMapping": c.exportMapping,
            "sourcing-kit:apiBaseUrl": c.apiBaseUrl ?? DEFAULT_API_BASE_URL,
            "sourcing-kit:preflight": c.preflight,
            "sourcing-kit:preflightSourceChecks": c.preflightSourceChecks,
            "sourcing-kit:deliveryBaseUrl": c.deliveryBaseUrl,
            "sourcing-kit:mode": c.sources[0]!.mode,
            "sourcing-kit:batchSize": c.sources[0]!.batchSize,
        };
        const declared = Object.fromEntries(Object.entries(projectFile().config).filter(([, d]) => d.default !== undefined).map(([k, d]) => [k, d.default]));
        assert.deepStrictEqual(declared, programDefaults);
    });

    for (const stack of ["dev", "local"]) {
        it(`keeps secrets out of Pulumi.${stack}.yaml (only secure: values would be allowed)`, () => {
            const config = readYaml(`Pulumi.${stack}.yaml`).config as Record<string, unknown>;
            for (const key of SECRET_KEYS) {
                const value = config[key];
                assert.ok(value === undefined || (typeof value === "object" && value !== null && "secure" in value), `${key} is in plain text`);
            }
        });
    }

    it("has a dev stack that validates once the bootstrap token secret is set", () => {
        const result = parseStackConfig({
            values: stackConfig("dev", { "cloudflare:apiToken": "bootstrap" }),
            secretKeys: new Set(["cloudflare:apiToken"]), env: {}, now: NOW,
        });
        assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
        assert.deepStrictEqual(result.config.sources.map((s) => [s.name, s.source.kind, s.sample]), [["product-photos", "s3", 25]]);
        assert.strictEqual(result.config.redirects?.routePattern, "dev.acme-shop.example/media/*");
        assert.strictEqual(result.config.scopedToken, true);
    });

    it("has a local stack that validates with CLOUDFLARE_API_TOKEN from the environment", () => {
        const result = parseStackConfig({ values: stackConfig("local"), secretKeys: new Set(), env: { CLOUDFLARE_API_TOKEN: "local-token" }, now: NOW });
        assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
        assert.strictEqual(result.config.apiBaseUrl, "http://127.0.0.1:8787/client/v4");
        assert.strictEqual(result.config.scopedToken, false);
        assert.deepStrictEqual(result.config.redirects, { databaseId: LOCAL.databaseId, deployWorker: false, fallback: "origin", originUrl: `http://127.0.0.1:${LOCAL.ports.origin}` });
        assert.deepStrictEqual(result.config.sources.map((s) => [s.name, s.source]), [["example-images", { kind: "local", dir: "examples/images" }]]);
        // npm start (local/start.ts) serves exactly what the stack file points at.
        assert.strictEqual(result.config.apiBaseUrl, `http://127.0.0.1:${LOCAL.ports.api}/client/v4`);
        assert.strictEqual(result.config.deliveryBaseUrl, `http://127.0.0.1:${LOCAL.ports.api}/cdn-cgi/imagedelivery`);
        assert.deepStrictEqual([result.config.accountId, result.config.accountHash], [LOCAL.accountId, LOCAL.accountHash]);
    });
});
