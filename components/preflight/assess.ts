// Pure pre-flight judgement: what the account already holds against what the stack plans, quota, cost, messages.
import { IMAGES_PRICES, monthlyStorageUsd, usd } from "./prices";

export type PreflightMode = "off" | "sample" | "full";
export type OnConflict = "adopt" | "overwrite" | "fail";

/** At most this many of the account's images are listed in `sample` mode (10 requests of 10,000). */
export const SAMPLE_LIST_LIMIT = 100_000;
/** Warn when the account would be at least this full after the migration. */
export const QUOTA_WARN_RATIO = 0.9;
/** Example IDs named in a message. */
const EXAMPLES = 3;

/** One image set's plan, as the pre-flight sees it. */
export interface SetPlan {
    name: string;
    configPath: string;
    onConflict: OnConflict;
    images: ReadonlyArray<{ imageId: string; sourceHash: string; url?: string }>;
}

/** The account's images by custom ID: the source hash sourcing-kit recorded, or null for an image it did not upload. */
export interface AccountImages {
    byId: ReadonlyMap<string, string | null>;
    /** Images stored on the account (stats) and the allowance. */
    current: number;
    allowed: number;
    /** False when the listing stopped at a bound (`sample`): images beyond it were not seen. */
    complete: boolean;
}

export interface SourceFailure {
    /** The URL without credentials. */
    url: string;
    reason: string;
}

export interface SourceCheck {
    checked: number;
    failures: SourceFailure[];
}

/** Counts only: this goes into logs and the `preflight` stack output. */
export interface SetPreflight {
    planned: number;
    /** Already in Cloudflare under the planned ID with this source hash: kept or adopted, no upload. */
    alreadyThere: number;
    /** Uploaded by sourcing-kit from other source bytes: replaced (the source changed since). */
    replaced: number;
    /** Another image (not uploaded by sourcing-kit) under a planned ID: onConflict decides. */
    conflicts: number;
    /** Not in the account (or not in the part of it that was listed). */
    toUpload: number;
    onConflict: OnConflict;
    sourcesChecked: number;
    sourcesFailed: number;
}

export interface AccountPreflight {
    imagesStored: number;
    allowed: number;
    /** The images listed (all of them unless `listingComplete` is false). */
    listed: number;
    listingComplete: boolean;
    /** Images the plan adds at least (exact when the listing is complete) and at most. */
    adds: number;
    addsAtMost: number;
    storedAfter: number;
    storageUsdPerMonthAdded: number;
    storageUsdPerMonthAfter: number;
    pricesAsOf: string;
}

export interface PreflightReport {
    mode: Exclude<PreflightMode, "off">;
    account?: AccountPreflight;
    sets: Record<string, SetPreflight>;
    warnings: number;
}

export interface Assessment {
    report: PreflightReport;
    /** Each stops the program: the config key or property and the fix are in the text. */
    problems: string[];
    /** Said as warnings; `set` names the image set they belong to (else the stack). */
    warnings: { set?: string; message: string }[];
    /** Said as info lines. */
    info: { set?: string; message: string }[];
}

export interface AssessInput {
    mode: Exclude<PreflightMode, "off">;
    sets: ReadonlyArray<SetPlan>;
    /** Undefined when the token could not read the account's images (said in `notes`). */
    account?: AccountImages;
    sources: ReadonlyMap<string, SourceCheck>;
    /** Problems and warnings found on the way (token, reachability), kept in order. */
    problems?: string[];
    warnings?: string[];
}

const n = (value: number): string => value.toLocaleString("en-US");
const plural = (count: number, one: string, many = `${one}s`): string => `${n(count)} ${count === 1 ? one : many}`;

/** Pure: classifies every planned image against the account, checks the allowance, prices the plan, words it all. */
export function assess(input: AssessInput): Assessment {
    const problems = [...(input.problems ?? [])];
    const warnings: Assessment["warnings"] = (input.warnings ?? []).map((message) => ({ message }));
    const info: Assessment["info"] = [];
    const sets: Record<string, SetPreflight> = {};
    let notFound = 0;

    for (const set of input.sets) {
        const counts = { alreadyThere: 0, replaced: 0, conflicts: 0, toUpload: 0 };
        const conflictIds: string[] = [];
        for (const image of set.images) {
            const recorded = input.account?.byId.get(image.imageId);
            if (recorded === undefined) counts.toUpload++;
            else if (recorded === image.sourceHash) counts.alreadyThere++;
            else if (recorded !== null) counts.replaced++;
            else {
                counts.conflicts++;
                if (conflictIds.length < EXAMPLES) conflictIds.push(image.imageId);
            }
        }
        notFound += counts.toUpload;
        const sources = input.sources.get(set.configPath) ?? { checked: 0, failures: [] };
        sets[set.name] = { planned: set.images.length, ...counts, onConflict: set.onConflict, sourcesChecked: sources.checked, sourcesFailed: sources.failures.length };

        if (input.account) {
            const seen = input.account.complete ? "" : " (in the part of the account listed)";
            info.push({ set: set.name, message: `${set.name}: pre-flight: ${n(counts.toUpload)} to upload${seen}, ` +
                `${n(counts.alreadyThere)} already in Cloudflare with this source hash (no upload), ` +
                `${n(counts.replaced)} uploaded earlier from other source bytes (replaced), ` +
                `${n(counts.conflicts)} taken by other images` });
        }
        if (counts.conflicts > 0) {
            const what = `${plural(counts.conflicts, "planned custom ID")} already ${counts.conflicts === 1 ? "holds an image" : "hold images"} ` +
                `that sourcing-kit did not upload (e.g. ${conflictIds.map((id) => `"${id}"`).join(", ")})`;
            if (set.onConflict === "overwrite") {
                warnings.push({ set: set.name, message: `${set.configPath}: ${what}; onConflict is overwrite, so up deletes ${counts.conflicts === 1 ? "it" : "them"} and uploads ours` });
            } else {
                const verb = set.onConflict === "fail" ? "stops at" : "refuses";
                problems.push(`${set.configPath}: ${what}; with onConflict ${set.onConflict}${set.onConflict === "adopt" ? " (the default)" : ""} up ${verb} each of them: ` +
                    `set ${set.configPath}.onConflict to overwrite to replace them, give the set an idPrefix, or exclude those images`);
            }
        }
        if (sources.checked > 0) {
            if (sources.failures.length === 0) {
                info.push({ set: set.name, message: `${set.name}: pre-flight: ${plural(sources.checked, "sampled source URL")} reachable, images, under 10 MB` });
            } else {
                const listed = sources.failures.map((f) => `${f.url} (${f.reason})`).join("; ");
                warnings.push({ set: set.name, message: `${set.configPath}: ${n(sources.failures.length)} of ${plural(sources.checked, "sampled source URL")} would fail to import: ${listed}` });
            }
        }
    }

    let account: AccountPreflight | undefined;
    if (input.account) {
        const a = input.account;
        const unlisted = a.complete ? 0 : Math.max(0, a.current - a.byId.size);
        const adds = Math.max(0, notFound - unlisted);
        const addsAtMost = notFound;
        account = {
            imagesStored: a.current, allowed: a.allowed, listed: a.byId.size, listingComplete: a.complete,
            adds, addsAtMost, storedAfter: a.current + addsAtMost,
            storageUsdPerMonthAdded: monthlyStorageUsd(addsAtMost), storageUsdPerMonthAfter: monthlyStorageUsd(a.current + addsAtMost),
            pricesAsOf: IMAGES_PRICES.asOf,
        };
        const range = adds === addsAtMost ? n(adds) : `${n(adds)} to ${n(addsAtMost)}`;
        const allowance = `the account holds ${n(a.current)} of ${n(a.allowed)} allowed images`;
        if (!a.complete) {
            info.push({ message: `pre-flight: listed the ${n(a.byId.size)} most recently uploaded of ${n(a.current)} images in the account ` +
                `(sourcing-kit:preflight sample); set sourcing-kit:preflight full to check every image` });
        }
        if (a.current + adds > a.allowed) {
            problems.push(`the plan adds ${range} images and ${allowance}: ${n(a.current + adds - a.allowed)} over the allowance. ` +
                `Raise the allowance (Images > Overview > Plans), delete images the account no longer needs, or migrate part of the library ` +
                `(sourcing-kit:sample, or include/exclude on a source)`);
        } else if (a.current + addsAtMost > a.allowed) {
            warnings.push({ message: `the plan adds ${range} images and ${allowance}: it may go over the allowance by up to ${n(a.current + addsAtMost - a.allowed)} ` +
                `(set sourcing-kit:preflight full to know exactly)` });
        } else if (a.allowed > 0 && a.current + addsAtMost >= QUOTA_WARN_RATIO * a.allowed) {
            warnings.push({ message: `the plan adds ${range} images and ${allowance}: afterwards ${n(a.current + addsAtMost)} ` +
                `(${Math.round(((a.current + addsAtMost) / a.allowed) * 100)}% of the allowance); Cloudflare refuses uploads beyond it` });
        }
        info.push({ message: `pre-flight: adds ${range} images: about ${usd(account.storageUsdPerMonthAdded)} a month to store at current prices ` +
            `(${usd(IMAGES_PRICES.storedPer100kPerMonth)} per 100,000 images stored, ${usd(IMAGES_PRICES.deliveredPer100kPerMonth)} per 100,000 delivered, ` +
            `as published on ${IMAGES_PRICES.asOf}); the account then stores ${n(account.storedAfter)} images, about ${usd(account.storageUsdPerMonthAfter)} a month` });
    }

    return { report: { mode: input.mode, ...(account ? { account } : {}), sets, warnings: warnings.length }, problems, warnings, info };
}

/** Pure: `count` indices spread evenly over `length` items (stable: the same plan gives the same sample). */
export function spreadSample(length: number, count: number): number[] {
    if (count <= 0 || length <= 0) return [];
    if (count >= length) return Array.from({ length }, (_, i) => i);
    return Array.from({ length: count }, (_, i) => Math.floor((i * length) / count));
}

/** Pure: a URL safe to print: no user:password, and query values that look like credentials replaced. */
export function printableUrl(url: string): string {
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        return "(an unparseable URL)";
    }
    parsed.username = "";
    parsed.password = "";
    for (const key of [...parsed.searchParams.keys()]) {
        if (/sig|signature|token|key|secret|credential|auth|pass|policy|x-amz-|expires/i.test(key)) parsed.searchParams.set(key, "redacted");
    }
    return parsed.toString();
}
