import { strict as assert } from "assert";
import * as util from "util";
import * as pulumi from "@pulumi/pulumi";
import { userError } from "../../components/user-error";

describe("userError: a RunError the Pulumi SDK can format quickly", () => {
    it("is a RunError (the CLI shows its message without a stack) with the message intact", () => {
        const error = userError("the stack configuration has 2 problems:\n  - a\n  - b");
        assert.ok(pulumi.RunError.isInstance(error));
        assert.equal(error.message, "the stack configuration has 2 problems:\n  - a\n  - b");
    });

    it("has no stack frames, so util.inspect with colors (what the SDK runs on every program error) cannot blow up", () => {
        const error = userError("bad config");
        assert.doesNotMatch(error.stack ?? "", /\n\s+at /);
        assert.ok(util.inspect(error, { colors: true }).includes("bad config"));
    });
});
