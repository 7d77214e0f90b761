/**
 * One plan measurement in a fresh process (so peak RSS belongs to one size): a MigratedImageSet of N `urls`
 * source images declared under `pulumi.runtime.setMocks`, as `pulumi preview` would expand it.
 * Usage: node -r ts-node/register/transpile-only bench/plan-child.ts <images> [--capture] [--program-defaults]
 * Prints one JSON line: { images, registered, seconds, peakRssMb, providerBytes, sample? }.
 */
// Stack-trace capture dominates resource registration (DESIGN.md). Set process-wide unless --program-defaults, which
// measures the set as a program runs it (MigratedImageSet then turns capture off only while it declares images).
if (!process.argv.includes("--program-defaults")) Error.stackTraceLimit = 0;

import * as pulumi from "@pulumi/pulumi";
import { PLAN_ACCOUNT_HASH, PLAN_ACCOUNT_ID, PLAN_API_TOKEN_LENGTH, PLAN_IMAGE_ORIGIN } from "./plan";

const IMAGE_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";

async function main(): Promise<void> {
    const images = Number(process.argv[2]);
    const capture = process.argv.includes("--capture");
    if (!Number.isInteger(images) || images < 1) throw new Error(`plan-child: first argument must be an image count (got ${process.argv[2]})`);

    let registered = 0;
    let lastRegistration = 0;
    let providerBytes = 0;
    let sample: Record<string, unknown> | undefined;
    let component: Record<string, unknown> | undefined;
    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                if (args.type === IMAGE_TYPE) {
                    registered++;
                    lastRegistration = Date.now();
                    const provider = args.inputs.__provider;
                    if (typeof provider === "string") providerBytes = Buffer.byteLength(provider);
                    if (capture && !sample) sample = { name: args.name, type: args.type, inputs: args.inputs };
                } else if (capture && !component) {
                    component = { name: args.name, type: args.type };
                }
                return { id: `${args.name}-id`, state: args.inputs };
            },
            call: () => ({}),
        },
        "sourcing-kit",
        "bench",
        true,
    );

    const urls = Array.from({ length: images }, (_, i) => `${PLAN_IMAGE_ORIGIN}/library/${String(i % 100).padStart(2, "0")}/photo-${i}.jpg`);
    const started = Date.now();
    // Loaded after setMocks, as a program is loaded after the engine connects.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { MigratedImageSet } = require("../components/migrated-image-set") as typeof import("../components/migrated-image-set");
    const set = new MigratedImageSet("bench", {
        accountId: PLAN_ACCOUNT_ID,
        accountHash: PLAN_ACCOUNT_HASH,
        // The stack hands every image the scoped token, a secret Output.
        apiToken: pulumi.secret("t".repeat(PLAN_API_TOKEN_LENGTH)),
        source: { kind: "urls", urls },
    });
    const planned = await new Promise<number>((resolve) => set.planned.apply((n) => resolve(n)));
    // Registrations run on after the planned count resolves; wait until every image is registered.
    const stallMs = 120_000;
    while (registered < planned) {
        if (Date.now() - Math.max(lastRegistration, started) > stallMs) {
            throw new Error(`plan-child: ${registered} of ${planned} images registered, none in the last ${stallMs / 1000} s`);
        }
        await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (Math.max(lastRegistration, Date.now()) - started) / 1000;
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    process.stdout.write(JSON.stringify({ images, planned, registered, seconds, peakRssMb, providerBytes, sample, component }) + "\n");
}

main().then(
    () => process.exit(0),
    (err) => {
        process.stdout.write(JSON.stringify({ error: String((err as Error)?.message ?? err).slice(0, 500) }) + "\n");
        process.exit(1);
    },
);
