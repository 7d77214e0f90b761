import * as assert from "assert";
import { CLI_MEMORY_ADVICE_FROM, PER_IMAGE_ADVICE_FROM, scaleAdvice } from "../../components/scale-advice";

describe("scale advice", () => {
    it("tells a per-image set of 10,000 images or more to switch to batch mode, naming the config key", () => {
        assert.strictEqual(scaleAdvice("lib", PER_IMAGE_ADVICE_FROM - 1, "image", {}), undefined);
        const advice = scaleAdvice("lib", PER_IMAGE_ADVICE_FROM, "image", {});
        assert.match(advice ?? "", /^lib: 10,000 images as one resource each; .*Set sourcing-kit:mode \(or this source's mode\) to batch/);
        // A per-image set never gets the CLI advice, however large: switching mode is what it needs.
        assert.doesNotMatch(scaleAdvice("lib", 200_000, "image", {}) ?? "", /GOMEMLIMIT/);
    });

    it("tells a batch set of 50,000 images or more how to keep the CLI's memory down, unless it already does", () => {
        assert.strictEqual(scaleAdvice("lib", CLI_MEMORY_ADVICE_FROM - 1, "batch", {}), undefined);
        assert.match(scaleAdvice("lib", 100_000, "batch", {}) ?? "", /^lib: 100,000 images in one stack; .*`GOMEMLIMIT=512MiB pulumi up`.*sourcing-kit:partition$/);
        assert.strictEqual(scaleAdvice("lib", 100_000, "batch", { GOMEMLIMIT: "1GiB" }), undefined);
        assert.strictEqual(scaleAdvice("lib", 100_000, "batch", { PULUMI_SKIP_CHECKPOINTS: "true" }), undefined);
        assert.ok(scaleAdvice("lib", 100_000, "batch", { PULUMI_SKIP_CHECKPOINTS: "false" }));
    });
});
