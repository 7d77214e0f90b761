// Pure verdicts of `verify`: each image against Cloudflare, each redirect row against D1 and the Worker's answer.
import { unpackMetadata } from "../provider/source-metadata";

export type Status =
    | "ok"
    | "missing"            // the image is not in Cloudflare Images
    | "wrong-hash"         // Cloudflare holds other source bytes under the custom ID
    | "bytes-differ"       // --bytes: the stored original is not the source's bytes
    | "source-unreadable"  // --bytes: the source could not be fetched to compare
    | "not-in-d1"          // the stack's row is not in the redirect table
    | "wrong-row"          // the row points somewhere else
    | "not-redirected"     // the Worker did not answer 301
    | "wrong-redirect";    // it answered 301 to another URL

export interface Verdict { status: Status; detail?: string }

const OK: Verdict = { status: "ok" };

/** One line of the report: an old URL (or, for an image without a redirect row, its source) and what became of it. */
export interface ReportLine { oldUrl: string; imageId: string; deliveryUrl: string; status: Status; detail?: string }

/** The image as Cloudflare lists it, against the source hash the stack recorded. */
export function checkImage(recordedHash: string, listed: { meta?: Record<string, unknown> | null } | undefined): Verdict {
    if (listed === undefined) {
        return { status: "missing", detail: "not in Cloudflare Images (deleted outside Pulumi?); run pulumi refresh, then pulumi up to upload it again" };
    }
    const { sourceHash } = unpackMetadata(listed.meta);
    if (sourceHash !== recordedHash) {
        return {
            status: "wrong-hash",
            detail: `Cloudflare's copy records source hash ${sourceHash ?? "(none)"}, the stack ${recordedHash}: ` +
                "it was replaced outside Pulumi; run pulumi refresh, then pulumi up",
        };
    }
    return OK;
}

/** The original bytes Cloudflare stores against the source's bytes, as sha256 hex digests. */
export function checkBytes(sourceSha256: string | Error, storedSha256: string | undefined): Verdict {
    if (sourceSha256 instanceof Error) return { status: "source-unreadable", detail: `could not read the source to compare: ${sourceSha256.message}` };
    if (storedSha256 === undefined) return { status: "missing", detail: "the image has no stored original (deleted meanwhile?)" };
    if (storedSha256 !== sourceSha256) {
        return { status: "bytes-differ", detail: `stored original sha256 ${storedSha256.slice(0, 12)}…, source ${sourceSha256.slice(0, 12)}…: the source changed since the upload (run pulumi up) or the image was replaced` };
    }
    return OK;
}

/** The stack's row against what the redirect table holds for its key. */
export function checkRow(expected: string, stored: string | undefined): Verdict {
    if (stored === undefined) return { status: "not-in-d1", detail: "the row is missing from the redirect table; run pulumi refresh, then pulumi up to write it again" };
    if (stored !== expected) return { status: "wrong-row", detail: `the table sends it to ${stored}, the stack to ${expected}; run pulumi up` };
    return OK;
}

/** The Worker's answer to the old path. */
export function checkAnswer(expected: string, status: number | Error, location: string | undefined): Verdict {
    if (status instanceof Error) return { status: "not-redirected", detail: `the Worker did not answer: ${status.message}` };
    if (status !== 301) return { status: "not-redirected", detail: `the Worker answered ${status}, not 301` };
    if (location !== expected) return { status: "wrong-redirect", detail: `301 to ${location ?? "(no Location)"}, expected ${expected}` };
    return OK;
}

/** The first verdict that is not ok, else ok. */
export function worst(...verdicts: (Verdict | undefined)[]): Verdict {
    return verdicts.find((v) => v !== undefined && v.status !== "ok") ?? OK;
}

/** Pure: RFC 4180 CSV with a header line. */
export function csv(lines: ReportLine[]): string {
    const field = (value: string) => (/[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);
    const rows = [["old_url", "custom_id", "delivery_url", "status", "detail"],
        ...lines.map((l) => [l.oldUrl, l.imageId, l.deliveryUrl, l.status, l.detail ?? ""])];
    return rows.map((r) => r.map(field).join(",")).join("\n") + "\n";
}

/** Pure: "3 ok, 1 missing" in a fixed order, zero counts left out (all ok: "3 ok"). */
export function countLine(verdicts: Verdict[]): string {
    const counts = new Map<Status, number>();
    for (const v of verdicts) counts.set(v.status, (counts.get(v.status) ?? 0) + 1);
    const order: Status[] = ["ok", "missing", "wrong-hash", "bytes-differ", "source-unreadable", "not-in-d1", "wrong-row", "not-redirected", "wrong-redirect"];
    const parts = order.filter((s) => counts.has(s)).map((s) => `${counts.get(s)!.toLocaleString("en-US")} ${s}`);
    return parts.length > 0 ? parts.join(", ") : "none";
}
