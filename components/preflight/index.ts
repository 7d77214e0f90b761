import * as pulumi from "@pulumi/pulumi";
import type { SetClaim } from "../custom-id-claims";
import { userError } from "../user-error";
import type { PreflightReport, SetPlan } from "./assess";
import { runPreflight, type PreflightOptions } from "./run";

export type { PreflightMode, PreflightReport, SetPreflight, AccountPreflight } from "./assess";
export { runPreflight, type PreflightOptions } from "./run";

/**
 * The stack's pre-flight: once every image set has planned (the CustomIdClaims barrier), read-only calls check the
 * token, the allowance, what the account already holds and a sample of source URLs; findings go to the sets' log
 * lines and `report`, and a problem stops the program before any image is declared.
 */
export class StackPreflight {
    /** Counts only (no secret): the `preflight` stack output. */
    readonly report: Promise<PreflightReport>;
    private settle!: (report: PreflightReport) => void;
    private fail!: (error: Error) => void;

    constructor(private readonly options: PreflightOptions) {
        this.report = new Promise<PreflightReport>((resolve, reject) => {
            this.settle = resolve;
            this.fail = reject;
        });
        this.report.catch(() => undefined);
    }

    /** The CustomIdClaims check. */
    readonly check = async (claims: readonly SetClaim[]): Promise<void> => {
        const ordered = [...claims].sort((a, b) => a.configPath.localeCompare(b.configPath, "en", { numeric: true }));
        const plans: SetPlan[] = ordered.map((claim) => ({
            name: claim.name ?? claim.configPath,
            configPath: claim.configPath,
            onConflict: claim.onConflict ?? "adopt",
            images: claim.images.map((i) => ({ imageId: i.imageId, sourceHash: i.sourceHash ?? "", ...(i.url !== undefined ? { url: i.url } : {}) })),
        }));
        const result = await runPreflight(this.options, plans);
        const resourceOf = (set: string | undefined) => ordered.find((c) => (c.name ?? c.configPath) === set)?.resource;
        for (const line of result.info) pulumi.log.info(line.message, resourceOf(line.set));
        for (const line of result.warnings) pulumi.log.warn(line.message, resourceOf(line.set));
        if (result.problems.length > 0) {
            const noun = result.problems.length === 1 ? "problem" : "problems";
            const error = userError([`pre-flight found ${result.problems.length} ${noun}; nothing was sent to Cloudflare Images:`,
                ...result.problems.map((p) => `  - ${p}`),
                "(sourcing-kit:preflight off skips these checks)"].join("\n"));
            this.fail(error);
            throw error;
        }
        this.settle(result.report);
    };
}
