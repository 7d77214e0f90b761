import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { Emulator, startEmulator } from "../emulator";
import { DesiredResource, EngineDriver } from "../host/engine-driver";
import { IMAGE_SECRET_OUTPUTS } from "../../provider/image";
import { RecordingMocks, settled } from "./mocks";
import { stackConfig } from "./stack-files";
import program = require("../../index");

const IMAGE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";
const SET = "sourcing-kit:index:MigratedImageSet";

/**
 * The README's "Trying it locally" walk-through without the Pulumi CLI: the program runs with the committed
 * Pulumi.local.yaml (apiBaseUrl pointed at an emulator on a free port), and the images it declares go through the
 * real dynamic provider host, driven like the engine does for `pulumi up`, `pulumi up` again and `pulumi destroy`.
 */
describe("the local stack end to end: program -> real provider host -> emulator", function () {
    let emulator: Emulator;
    let driver: EngineDriver;
    let desired: DesiredResource[];
    const savedEnv = { ...process.env };

    before(async () => {
        emulator = await startEmulator({ accountId: "local-account", tokens: ["local-token"], accountHash: "local-hash" });
        const config = stackConfig("local", { "sourcing-kit:apiBaseUrl": emulator.baseUrl });
        process.env.CLOUDFLARE_API_TOKEN = "local-token";

        // What the program declares (`pulumi up` runs the program the same way, just not in preview).
        const mocks = new RecordingMocks();
        await pulumi.runtime.setMocks(mocks, "sourcing-kit", "local", false);
        pulumi.runtime.setAllConfig(config, []);
        await program();
        await settled();
        desired = mocks.ofType(IMAGE).map((r) => ({
            urn: `urn:pulumi:local::sourcing-kit::${SET}$${IMAGE}::${r.name}`,
            inputs: r.inputs,
            additionalSecretOutputs: IMAGE_SECRET_OUTPUTS,
        }));

        // The provider host gets the stack config in Configure and the CLI's environment, as under `pulumi up`.
        driver = await EngineDriver.start(config, { env: { CLOUDFLARE_API_TOKEN: "local-token" } });
    });
    after(async () => {
        process.env = savedEnv;
        pulumi.runtime.setAllConfig({}, []);
        await driver?.host.kill();
        await emulator?.close();
    });

    it("pulumi up uploads the three sample images under their custom IDs, streaming the files", async () => {
        assert.strictEqual(desired.length, 3);
        const result = await driver.up(desired);
        assert.deepStrictEqual(result.errors, []);
        assert.deepStrictEqual(result.counts, { create: 3 });
        assert.deepStrictEqual([...emulator.images.keys()].sort(), ["examples/logo.png", "examples/products/blue-shoe.png", "examples/products/red-shoe.png"]);
        assert.strictEqual(emulator.counters.uploads, 3);
        const logo = emulator.images.get("examples/logo.png")!;
        assert.strictEqual(logo.contentType, "image/png");
        assert.strictEqual(logo.bytes.subarray(1, 4).toString(), "PNG");
    });

    it("pulumi up again changes nothing and calls no write endpoint", async () => {
        emulator.resetCounters();
        const result = await driver.up(desired);
        assert.deepStrictEqual(result.errors, []);
        assert.deepStrictEqual(result.counts, { same: 3 });
        assert.strictEqual(emulator.counters.uploads + emulator.counters.patches + emulator.counters.deletes, 0);
    });

    it("keeps the token out of the state in plain text", () => {
        assert.ok(!driver.plainTextCheckpoint().includes("local-token"));
    });

    it("pulumi destroy deletes the images from the emulator", async () => {
        const result = await driver.destroy();
        assert.deepStrictEqual(result.errors, []);
        assert.deepStrictEqual(result.counts, { delete: 3 });
        assert.strictEqual(emulator.images.size, 0);
        assert.strictEqual(driver.state.size, 0);
    });
});
