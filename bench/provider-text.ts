import { providerShim } from "../provider/shim";

let cached: Promise<string> | undefined;

/**
 * The `__provider` text of CloudflareImage exactly as `pulumi.dynamic.Resource` produces it: Pulumi's closure
 * serializer applied to `() => provider`, where provider is the shim for provider/image-provider.ts.
 */
export function providerText(): Promise<string> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const closure = require("@pulumi/pulumi/runtime/closure/serializeClosure") as {
        serializeFunction(f: () => unknown, opts: { allowSecrets: boolean }): Promise<{ text: string }>;
    };
    // Named as in provider/image.ts: the captured variable's name is part of the text.
    const provider = providerShim("image-provider");
    cached ??= closure.serializeFunction(() => provider, { allowSecrets: true }).then((sf) => sf.text);
    return cached;
}
