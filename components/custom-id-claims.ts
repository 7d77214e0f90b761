import type * as pulumi from "@pulumi/pulumi";
import { SourceError } from "./sources/types";

/** What one image set plans to create, for the cross-set check (and the pre-flight, which needs the rest). */
export interface SetClaim {
    /** Where the set sits in stack config, e.g. `sourcing-kit:sources[1]`. */
    configPath: string;
    /** `key` is what the user recognises the image by: its old URL or path. */
    images: ReadonlyArray<{ imageId: string; key: string; sourceHash?: string; url?: string }>;
    /** The set's name, onConflict and component, for the pre-flight's report and log lines. */
    name?: string;
    onConflict?: "adopt" | "overwrite" | "fail";
    resource?: pulumi.Resource;
}

/** Runs once every set has planned with no shared custom ID; a rejection stops every set before it declares. */
export type ClaimsCheck = (claims: readonly SetClaim[]) => Promise<void>;

/** Two image sets that would write one custom ID (Cloudflare keeps one image per ID, Pulumi one resource per name). */
export class CrossSetCollisionError extends SourceError {
    constructor(imageId: string, first: { configPath: string; key: string }, second: { configPath: string; key: string }) {
        super(
            `${second.configPath}: image id "${imageId}" (from ${second.key}) is also planned by ${first.configPath} ` +
                `(from ${first.key}): give one of them an idPrefix, or exclude the image from one of them`,
            second.configPath,
        );
        this.name = "CrossSetCollisionError";
    }
}

/** The first custom ID two claims share, as an error naming both sets and both source keys; undefined when none. */
export function findCrossSetCollision(claims: ReadonlyArray<SetClaim>): CrossSetCollisionError | undefined {
    const owners = new Map<string, { configPath: string; key: string }>();
    // Config order, whichever set finished listing first: the message is the same on every run.
    const ordered = [...claims].sort((a, b) => a.configPath.localeCompare(b.configPath, "en", { numeric: true }));
    for (const claim of ordered) {
        for (const image of claim.images) {
            const owner = owners.get(image.imageId);
            if (owner && owner.configPath !== claim.configPath) {
                return new CrossSetCollisionError(image.imageId, owner, { configPath: claim.configPath, key: image.key });
            }
            owners.set(image.imageId, { configPath: claim.configPath, key: image.key });
        }
    }
    return undefined;
}

/**
 * A barrier shared by the image sets of one stack: each set lists and plans its source, then waits here until every
 * set has planned; only when no custom ID is planned twice does any set declare an image. So a collision between
 * sources (or a listing that fails) stops the program before anything is sent to Cloudflare.
 */
export class CustomIdClaims {
    private readonly claims: SetClaim[] = [];
    private readonly settled: Promise<void>;
    private resolve!: () => void;
    private reject!: (error: Error) => void;
    private done = false;

    constructor(private readonly expectedSets: number, private readonly check?: ClaimsCheck) {
        this.settled = new Promise<void>((resolve, reject) => {
            this.resolve = resolve;
            this.reject = reject;
        });
        // Every waiter handles the outcome; this keeps a rejection with no waiter left from being reported as unhandled.
        this.settled.catch(() => undefined);
        if (expectedSets <= 0) this.finish();
    }

    /** Submits a set's plan and resolves once every set has planned without a shared custom ID. */
    claim(claim: SetClaim): Promise<void> {
        if (!this.done) {
            this.claims.push(claim);
            if (this.claims.length >= this.expectedSets) this.finish();
        }
        return this.settled;
    }

    /** Resolves once every set may declare its images; rejects with what stopped them (collision, listing, pre-flight). */
    ready(): Promise<void> {
        return this.settled;
    }

    /** A set could not plan: the others must not declare images either (the program is failing). */
    abandon(configPath: string, error: Error): void {
        if (this.done) return;
        this.done = true;
        this.reject(new SourceError(`not declared: ${configPath} failed (${error.message.split("\n")[0]})`, configPath));
    }

    private finish(): void {
        if (this.done) return;
        this.done = true;
        const collision = findCrossSetCollision(this.claims);
        if (collision) this.reject(collision);
        else if (this.check) this.check(this.claims).then(() => this.resolve(), (error: Error) => this.reject(error));
        else this.resolve();
        // The claims hold every planned image: let them go once judged (the check copies what it keeps).
        void this.settled.finally(() => this.claims.splice(0)).catch(() => undefined);
    }
}
