import * as pulumi from "@pulumi/pulumi";

/** What the program registers for one CloudflareImage, captured from the mocked engine. */
export interface CapturedRegistration {
    type: string;
    name: string;
    /** The inputs as registered (the mocks unwrap secrets); `__provider` is the serialized shim text. */
    inputs: Record<string, unknown>;
    /** The resource options the engine would receive, as the monitor saw them. */
    additionalSecretOutputs: string[];
}

/**
 * Declares one CloudflareImage under `pulumi.runtime.setMocks` and returns what the engine would receive,
 * including the real `__provider` text the dynamic provider host deserializes.
 */
export async function captureImageRegistration(): Promise<CapturedRegistration> {
    return captureRegistration(async () => {
        // Loaded after setMocks so the resource registers against the mocked engine.
        const { CloudflareImage } = await import("../../provider/image");
        return new CloudflareImage("probe", {
            accountId: "acc-test",
            imageId: "probe/one.png",
            url: "https://example.com/one.png",
            sourceHash: "sha256-probe",
            apiToken: "probe-token",
        });
    });
}

/** The same for one CloudflareImageBatch (named "probe-batch", owner "host-test/probe-batch"). */
export async function captureBatchRegistration(): Promise<CapturedRegistration> {
    return captureRegistration(async () => {
        const { CloudflareImageBatch } = await import("../../provider/image-batch");
        return new CloudflareImageBatch("probe-batch", {
            accountId: "acc-test",
            images: { "probe/one.png": { url: "https://example.com/one.png", sourceHash: "sha256-probe" } },
            apiToken: "probe-token",
        });
    });
}

async function captureRegistration(declare: () => Promise<pulumi.CustomResource>): Promise<CapturedRegistration> {
    let captured: Omit<CapturedRegistration, "additionalSecretOutputs"> | undefined;
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                captured = { type: args.type, name: args.name, inputs: args.inputs };
                return { id: `${args.name}-id`, state: args.inputs };
            },
            call: () => ({}),
        },
        "sourcing-kit",
        "host-test",
        false,
    );
    // The monitor sees the raw RegisterResourceRequest, which carries the resource options.
    const monitor = pulumi.runtime.getMonitor() as unknown as {
        registerResource: (req: { getAdditionalsecretoutputsList(): string[] }, cb: unknown) => unknown;
    };
    let secretOutputs: string[] = [];
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, cb) => {
        secretOutputs = req.getAdditionalsecretoutputsList();
        return register(req, cb);
    };

    const resource = await declare();
    await new Promise<void>((resolve) => resource.urn.apply(() => resolve()));
    if (!captured) throw new Error("the mocked engine received no registration");
    return { ...captured, additionalSecretOutputs: secretOutputs };
}

/** The serialized `__provider` text the program really produces for every CloudflareImage. */
export async function serializedImageProvider(): Promise<string> {
    const { inputs } = await captureImageRegistration();
    const text = inputs.__provider;
    if (typeof text !== "string") throw new Error("CloudflareImage registered no __provider text");
    return text;
}
