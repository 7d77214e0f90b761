import { strict as assert } from "assert";
import * as pulumi from "@pulumi/pulumi";
import { trimEngineOverhead } from "../../components/engine-runtime";

describe("trimEngineOverhead", () => {
    it("leaves the SDK and stack traces alone under mocks (tests) and with SOURCING_KIT_DEBUG_RUNTIME=true", async () => {
        await pulumi.runtime.setMocks({ newResource: (a) => ({ id: a.name, state: a.inputs }), call: () => ({}) });
        const limit = Error.stackTraceLimit;
        assert.equal(trimEngineOverhead({}), false);
        assert.equal(trimEngineOverhead({ SOURCING_KIT_DEBUG_RUNTIME: "true" }), false);
        assert.equal(Error.stackTraceLimit, limit);
    });
});
