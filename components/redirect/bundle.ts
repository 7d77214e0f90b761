import * as path from "path";
import { buildSync } from "esbuild";

/** File name of the module in the upload (the WorkersScript `mainModule`). */
export const WORKER_MAIN_MODULE = "worker.js";

/** The Workers runtime version the Worker is written for (its compatibility_date), deployed or run locally. */
export const WORKER_COMPATIBILITY_DATE = "2025-01-01";
export const WORKER_ENTRY = path.join(__dirname, "worker", "index.ts");

let cached: string | undefined;

/** The Worker as one ES module script (worker/index.ts with provider/redirect/paths.ts and delivery-url.ts bundled in). */
export function bundleWorker(): string {
    if (cached === undefined) {
        const result = buildSync({
            entryPoints: [WORKER_ENTRY],
            bundle: true,
            write: false,
            format: "esm",
            platform: "neutral",
            target: "es2022",
            minify: false,
            legalComments: "none",
            logLevel: "silent",
        });
        cached = result.outputFiles[0].text;
    }
    return cached;
}
