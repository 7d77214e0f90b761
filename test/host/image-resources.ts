import type { DesiredResource } from "./engine-driver";
import { isSecret, secret } from "./engine-driver";
import type { Props } from "./provider-host";
import type { CapturedRegistration } from "./serialized-provider";

export const IMAGE_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";

/** The URN the engine gives a CloudflareImage named `name` in stack `stack` of project sourcing-kit. */
export function imageUrn(name: string, stack = "host-test"): string {
    return `urn:pulumi:${stack}::sourcing-kit::${IMAGE_TYPE}::${name}`;
}

/**
 * A CloudflareImage as the program registers it: the captured `__provider` text and secret outputs, plus `inputs`
 * (a plain `apiToken` is wrapped as a secret, as the resource does).
 */
export function desiredImage(reg: CapturedRegistration, name: string, inputs: Props): DesiredResource {
    const token = inputs.apiToken;
    return {
        urn: imageUrn(name),
        additionalSecretOutputs: reg.additionalSecretOutputs,
        inputs: {
            __provider: reg.inputs.__provider,
            ...inputs,
            ...(token === undefined || isSecret(token) ? {} : { apiToken: secret(token) }),
        },
    };
}
