// Token verification, permission groups and per-token permissions, over raw HTTP.
import * as assert from "node:assert/strict";
import { startEmulator, type Emulator } from "./index";
import { pngBytes } from "./fixtures";
import { call, errorCode, uploadForm } from "./http-helpers";

describe("emulator tokens: verify, permission groups, what each token may do", () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({
      tokens: ["full", "reader", "no-images", "account-owned", "disabled"],
      tokenGrants: {
        reader: { images: "read", apiTokens: false },
        "no-images": { images: "none", apiTokens: false },
        "account-owned": { owner: "account" },
        disabled: { status: "disabled" },
      },
    });
  });
  after(() => emu.close());

  it("verifies a user token at /user/tokens/verify and an account-owned one only at /accounts/{id}/tokens/verify", async () => {
    const user = await call(emu.baseUrl, "GET", "/user/tokens/verify", { token: "full" });
    assert.equal(user.status, 200);
    assert.equal((user.body as { result: { status: string } }).result.status, "active");
    const wrongPath = await call(emu.baseUrl, "GET", "/user/tokens/verify", { token: "account-owned" });
    assert.equal(wrongPath.status, 401);
    assert.equal(errorCode(wrongPath), 1000);
    const account = await call(emu.baseUrl, "GET", "/accounts/acc-test/tokens/verify", { token: "account-owned" });
    assert.equal(account.status, 200);
    assert.equal(errorCode(await call(emu.baseUrl, "GET", "/user/tokens/verify", { token: "unknown" })), 1000);
  });

  it("reports a disabled token's status at verify and refuses it everywhere else", async () => {
    const verify = await call(emu.baseUrl, "GET", "/user/tokens/verify", { token: "disabled" });
    assert.equal((verify.body as { result: { status: string } }).result.status, "disabled");
    const stats = await call(emu.baseUrl, "GET", "/accounts/acc-test/images/v1/stats", { token: "disabled" });
    assert.equal(stats.status, 401);
    assert.equal(errorCode(stats), 10000);
  });

  it("lets Images Read list but not upload, and a token without Images access do neither (403 / 9109)", async () => {
    assert.equal((await call(emu.baseUrl, "GET", "/accounts/acc-test/images/v2", { token: "reader" })).status, 200);
    const upload = await call(emu.baseUrl, "POST", "/accounts/acc-test/images/v1", { token: "reader", form: uploadForm({ id: "x.png" }, { bytes: pngBytes(1) }) });
    assert.equal(upload.status, 403);
    assert.equal(errorCode(upload), 9109);
    const batch = await call(emu.baseUrl, "GET", "/accounts/acc-test/images/v1/batch_token", { token: "reader" });
    assert.equal(batch.status, 403);
    const none = await call(emu.baseUrl, "GET", "/accounts/acc-test/images/v1/stats", { token: "no-images" });
    assert.equal(none.status, 403);
    assert.equal(errorCode(none), 9109);
    assert.equal(emu.counters.uploads, 0);
  });

  it("lists permission groups only for tokens that may manage API tokens", async () => {
    const full = await call(emu.baseUrl, "GET", "/user/tokens/permission_groups", { token: "full" });
    assert.equal(full.status, 200);
    assert.ok((full.body as { result: { name: string }[] }).result.some((g) => g.name === "Images Write"));
    assert.equal((await call(emu.baseUrl, "GET", "/accounts/acc-test/tokens/permission_groups", { token: "account-owned" })).status, 200);
    const refused = await call(emu.baseUrl, "GET", "/user/tokens/permission_groups", { token: "reader" });
    assert.equal(refused.status, 403);
    assert.equal(errorCode(refused), 9109);
  });

  it("reports the allowance it is given in stats", async () => {
    emu.setAllowedImages(42);
    const stats = await call(emu.baseUrl, "GET", "/accounts/acc-test/images/v1/stats", { token: "full" });
    assert.deepEqual((stats.body as { result: unknown }).result, { count: { current: 0, allowed: 42 } });
  });
});
