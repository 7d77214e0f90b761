import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import {
    accountResources, D1_WRITE, IMAGES_WRITE, pickPermissionGroup, ScopedApiToken,
} from "../../components/scoped-api-token";
import { ACCOUNT_PERMISSION_GROUPS, isSecret, PERMISSION_GROUPS_TOKEN, RecordingMocks, registeredUrns, settled, valueOf } from "./mocks";

const ACCOUNT = "9a7806061c88ada191ed06f989cc3dac";

describe("ScopedApiToken: permission-group matching", () => {
    const group = (name: string, id = name.toLowerCase().replace(/\W+/g, "-")) => ({ id, name, scopes: ["com.cloudflare.api.account"] });

    it("prefers an exact name over a pattern match", () => {
        assert.strictEqual(pickPermissionGroup(IMAGES_WRITE, [group("Images Write", "exact"), group("Cloudflare Images Edit", "other")]).id, "exact");
    });

    it("finds the Images group under the names the docs use (Write or Edit, with or without 'Cloudflare')", () => {
        for (const name of ["Images Write", "Cloudflare Images Write", "Images Edit", "Cloudflare Images Edit", "Stream and Images Write"]) {
            assert.strictEqual(pickPermissionGroup(IMAGES_WRITE, [group("Cloudflare Images Read"), group(name, "w")]).id, "w", name);
        }
    });

    it("never takes a read group or a group of another scope", () => {
        const zoneImages = { id: "z", name: "Images Write", scopes: ["com.cloudflare.api.account.zone"] };
        assert.throws(() => pickPermissionGroup(IMAGES_WRITE, [group("Cloudflare Images Read"), zoneImages]), /"Images Write" \(scope com\.cloudflare\.api\.account\)/);
    });

    it("names the missing group, what it is for, and the fix", () => {
        assert.throws(() => pickPermissionGroup(D1_WRITE, [group("D1 Read")]), (err: Error) => {
            assert.strictEqual(err.message,
                'ScopedApiToken: permission group "D1 Write" (scope com.cloudflare.api.account), needed for writing the redirect rows into D1, ' +
                "is not visible to the bootstrap token (cloudflare:apiToken): 1 group(s) listed for that scope. " +
                'Give the bootstrap token the "API Tokens Write" permission (dashboard > My Profile > API Tokens > "Create Additional Tokens" template), ' +
                "check that the product is enabled on the account, or set sourcing-kit:scopedToken false");
            return true;
        });
    });

    it("refuses to guess between two groups that both look like Images write", () => {
        assert.throws(() => pickPermissionGroup(IMAGES_WRITE, [group("Images Variants Write"), group("Images Keys Write")]), /is ambiguous: "Images Variants Write", "Images Keys Write" all match/);
    });

    it("scopes the token to one account", () => {
        assert.strictEqual(accountResources(ACCOUNT), `{"com.cloudflare.api.account.${ACCOUNT}":"*"}`);
    });
});

describe("ScopedApiToken under mocks (what preview declares)", () => {
    async function declare(args: Partial<ConstructorParameters<typeof ScopedApiToken>[1]>, groups = ACCOUNT_PERMISSION_GROUPS) {
        const mocks = new RecordingMocks(groups);
        await pulumi.runtime.setMocks(mocks, "sourcing-kit", "dev", true);
        const token = new ScopedApiToken("migration-token", { accountId: ACCOUNT, tokenName: "sourcing-kit dev migration", d1Write: true, ...args });
        const tokenId = await valueOf(token.tokenId);
        const valueIsSecret = await isSecret(token.value);
        await settled();
        return { mocks, token, tokenId, valueIsSecret };
    }

    it("declares one ApiToken with Images write and D1 write on the account, looked up by URL-encoded name and scope", async () => {
        const { mocks, tokenId, valueIsSecret } = await declare({});
        const tokens = mocks.ofType("cloudflare:index/apiToken:ApiToken");
        assert.strictEqual(tokens.length, 1);
        assert.deepStrictEqual(tokens[0]!.inputs, {
            name: "sourcing-kit dev migration",
            policies: [{
                effect: "allow",
                resources: `{"com.cloudflare.api.account.${ACCOUNT}":"*"}`,
                permissionGroups: [{ id: "618ec6c64a3a42f8b08bdcb147ded4e4" }, { id: "09b2857d1c31407795e75e3fed8617a1" }],
            }],
        });
        assert.deepStrictEqual(mocks.invokes.filter((i) => i.token === PERMISSION_GROUPS_TOKEN).map((i) => i.inputs).sort((a, b) => String(a.name).localeCompare(String(b.name))), [
            { name: "D1%20Write", scope: "com.cloudflare.api.account" },
            { scope: "com.cloudflare.api.account" },
        ]);
        assert.strictEqual(tokenId, "migration-token-id");
        assert.strictEqual(valueIsSecret, true);
        assert.ok(registeredUrns().some((urn) => urn.endsWith("::sourcing-kit:index:ScopedApiToken$cloudflare:index/apiToken:ApiToken::migration-token")));
    });

    it("leaves D1 out when there are no redirects, and adds the expiry and IP condition when set", async () => {
        const { mocks } = await declare({ d1Write: false, expiresOn: "2027-06-30T00:00:00Z", allowedIps: ["203.0.113.0/24"] });
        const [token] = mocks.ofType("cloudflare:index/apiToken:ApiToken");
        assert.deepStrictEqual((token!.inputs.policies as { permissionGroups: unknown }[])[0]!.permissionGroups, [{ id: "618ec6c64a3a42f8b08bdcb147ded4e4" }]);
        assert.strictEqual(token!.inputs.expiresOn, "2027-06-30T00:00:00Z");
        assert.deepStrictEqual(token!.inputs.condition, { requestIp: { ins: ["203.0.113.0/24"] } });
        assert.ok(!mocks.invokes.some((i) => i.inputs.name === "D1%20Write"));
    });

    it("rejects a token name Cloudflare would refuse, before declaring anything", async () => {
        await pulumi.runtime.setMocks(new RecordingMocks(), "sourcing-kit", "dev", true);
        assert.throws(() => new ScopedApiToken("t", { accountId: ACCOUNT, tokenName: "x".repeat(121), d1Write: false }), /tokenName must be 1-120 characters \(got 121\)/);
    });
});
