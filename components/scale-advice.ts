// What to change before a set outgrows one machine, said in the program's output while there is still time to act
// (the figures are the batch bench's, README "Batch mode", with the real CLI v3.248 on a file backend).

/** From this many images in one set, per-image mode costs more memory than a laptop or CI runner has. */
export const PER_IMAGE_ADVICE_FROM = 10_000;
/** From this many images in one set, the CLI's own memory (not the program's) needs GOMEMLIMIT to stay under 2 GB. */
export const CLI_MEMORY_ADVICE_FROM = 50_000;

/**
 * A warning for a set of `images` images in `mode`, or undefined when there is nothing to change. `env` is the
 * program's environment, which the CLI passes on: GOMEMLIMIT and PULUMI_SKIP_CHECKPOINTS set for the CLI show here.
 */
export function scaleAdvice(name: string, images: number, mode: "image" | "batch", env: NodeJS.ProcessEnv): string | undefined {
    const n = images.toLocaleString("en-US");
    if (mode === "image" && images >= PER_IMAGE_ADVICE_FROM) {
        return `${name}: ${n} images as one resource each; per-image mode takes about 0.3 MB of memory and 7 KB of state ` +
            `per image (10,000 peaked at 3.3 GB). Set sourcing-kit:mode (or this source's mode) to batch before the first up ` +
            `of a set this size; switching later re-uploads nothing`;
    }
    if (mode === "batch" && images >= CLI_MEMORY_ADVICE_FROM && !env.GOMEMLIMIT && env.PULUMI_SKIP_CHECKPOINTS !== "true") {
        return `${name}: ${n} images in one stack; the pulumi CLI's memory grows with the state it rewrites after every step ` +
            `(a first up of 100,000 images peaked at 3.2 GB over all processes). For a first up this size run ` +
            `\`GOMEMLIMIT=512MiB pulumi up\` (1.7 GB, as fast, every checkpoint kept), or split the library with sourcing-kit:partition`;
    }
    return undefined;
}
