import { strict as assert } from "assert";
import { configuredApiToken, readProviderSettings, resolveApiToken } from "../../provider/provider-config";

const source = (values: Record<string, string>) => ({ get: (key: string) => values[key] });

describe("provider settings from configure() (pure)", () => {
    it("reads the token, endpoint, budget, batch switch, request timeout and AWS keys by their full config keys", () => {
        const settings = readProviderSettings(source({
            "cloudflare:apiToken": "cfg",
            "sourcing-kit:apiBaseUrl": "http://127.0.0.1:1/client/v4",
            "sourcing-kit:rateLimit": '{"requests":600,"windowSeconds":300}',
            "sourcing-kit:useBatchApi": "true",
            "sourcing-kit:requestTimeoutMs": "15000",
            "aws:accessKey": "AK", "aws:secretKey": "SK", "aws:region": "eu-west-1",
        }));
        assert.deepEqual(settings, {
            apiToken: "cfg", apiBaseUrl: "http://127.0.0.1:1/client/v4", rateLimit: { requests: 600, windowSeconds: 300 },
            useBatchApi: true, requestTimeoutMs: 15000, aws: { accessKey: "AK", secretKey: "SK", token: undefined, region: "eu-west-1" },
        });
        const empty = readProviderSettings(source({ "cloudflare:apiToken": "" }));
        assert.equal(empty.apiToken, undefined, "an empty value counts as unset");
        assert.deepEqual(JSON.parse(JSON.stringify(empty)), { aws: {} });
    });

    it("rejects a bad rateLimit, useBatchApi or requestTimeoutMs naming the key and the fix", () => {
        assert.throws(() => readProviderSettings(source({ "sourcing-kit:rateLimit": '{"requests":0}' })), /sourcing-kit:rateLimit must be JSON like/);
        assert.throws(() => readProviderSettings(source({ "sourcing-kit:useBatchApi": "yes" })), /sourcing-kit:useBatchApi must be true or false/);
        assert.throws(() => readProviderSettings(source({ "sourcing-kit:requestTimeoutMs": "30s" })), /sourcing-kit:requestTimeoutMs must be a whole number of milliseconds/);
    });

    it("an apiToken input wins, then cloudflare:apiToken, then CLOUDFLARE_API_TOKEN; none is an error naming all three", () => {
        const settings = readProviderSettings(source({ "cloudflare:apiToken": "cfg" }));
        assert.equal(resolveApiToken("input", settings, { CLOUDFLARE_API_TOKEN: "env" }), "input");
        assert.equal(resolveApiToken(undefined, settings, { CLOUDFLARE_API_TOKEN: "env" }), "cfg");
        const bare = readProviderSettings(source({}));
        assert.equal(resolveApiToken(undefined, bare, { CLOUDFLARE_API_TOKEN: "env" }), "env");
        assert.equal(configuredApiToken(bare, {}), undefined);
        assert.throws(() => resolveApiToken(undefined, bare, {}), /apiToken.*cloudflare:apiToken.*CLOUDFLARE_API_TOKEN/);
    });
});
