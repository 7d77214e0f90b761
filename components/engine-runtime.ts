import * as pulumi from "@pulumi/pulumi";
import * as sdkLog from "@pulumi/pulumi/log";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";

/**
 * The SDK's own debug lines for every resource RPC. Each one is a log RPC the SDK sends in strict sequence
 * (through the language host to the engine), and its text holds every input and output of the resource, secrets in
 * plain text; the CLI shows them only with `--debug`.
 */
const PER_RESOURCE_RPC_DEBUG = /^(RegisterResource(Outputs)? RPC (prepared|finished)|Registering resource|Reading resource|ReadResource RPC (prepared|finished))/;

/** Set to keep the SDK's per-resource debug lines and full stack traces (for debugging the kit itself). */
export const DEBUG_ENV = "SOURCING_KIT_DEBUG_RUNTIME";

/**
 * What the stack program changes in the Pulumi SDK when it runs under the real engine (not under mocks), measured
 * with the real CLI on 10,000 images: `pulumi preview` took 110 s. Dropping the per-resource RPC debug lines took it
 * to 64 s, and no stack capture (`Error.stackTraceLimit = 0`: the SDK captures a stack, source-mapped by ts-node,
 * for every promise it makes and for every resource) to 50 s. Errors the user must fix carry no stack anyway
 * (components/user-error.ts). Returns whether it applied.
 */
export function trimEngineOverhead(env: NodeJS.ProcessEnv = process.env): boolean {
    if (env[DEBUG_ENV] === "true" || pulumi.runtime.getMonitor() instanceof MockMonitor) return false;
    const log = sdkLog as { debug: typeof sdkLog.debug };
    const debug = log.debug;
    log.debug = (message, ...rest) => (PER_RESOURCE_RPC_DEBUG.test(message) ? Promise.resolve() : debug(message, ...rest));
    Error.stackTraceLimit = 0;
    return true;
}
