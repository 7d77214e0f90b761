// The pre-flight's pure parts: judging a plan against the account, sampling, URL printing, probe answers, prices.
import { strict as assert } from "assert";
import { assess, printableUrl, spreadSample, type SetPlan } from "../../components/preflight/assess";
import { monthlyStorageUsd } from "../../components/preflight/prices";
import { probeFailure, rangeTotal } from "../../components/preflight/source-probe";
import { pngBytes } from "../emulator/fixtures";

const plan = (n: number): SetPlan => ({
    name: "s", configPath: "sourcing-kit:sources[0]", onConflict: "adopt",
    images: Array.from({ length: n }, (_, i) => ({ imageId: `i${i}`, sourceHash: `h${i}` })),
});

describe("pre-flight judgement (pure)", () => {
    it("fails only when even the fewest possible adds overflow a partly listed account, and warns when the most might", () => {
        const account = (current: number, allowed: number) => ({ byId: new Map<string, string | null>(), current, allowed, complete: false });
        // 100 planned, none seen among 0 listed; 50 images unseen: adds between 50 and 100.
        const surely = assess({ mode: "sample", sets: [plan(100)], account: account(50, 90), sources: new Map() });
        assert.match(surely.problems.join(), /adds 50 to 100 images and the account holds 50 of 90 allowed images: 10 over the allowance/);
        const maybe = assess({ mode: "sample", sets: [plan(100)], account: account(50, 120), sources: new Map() });
        assert.deepEqual(maybe.problems, []);
        assert.match(maybe.warnings.map((w) => w.message).join(), /may go over the allowance by up to 30 \(set sourcing-kit:preflight full to know exactly\)/);
    });

    it("says nothing about the allowance below 90% of it, and counts the stack output's warnings", () => {
        const result = assess({ mode: "full", sets: [plan(10)], account: { byId: new Map(), current: 0, allowed: 100, complete: true }, sources: new Map(), warnings: ["w"] });
        assert.deepEqual(result.problems, []);
        assert.equal(result.report.warnings, 1);
        assert.equal(result.report.account?.adds, 10);
    });

    it("without an account view (a token that cannot read Images) reports per-set counts as uploads and no allowance", () => {
        const result = assess({ mode: "sample", sets: [plan(3)], sources: new Map() });
        assert.equal(result.report.account, undefined);
        assert.equal(result.report.sets.s?.toUpload, 3);
    });

    it("spreads a sample evenly and stably", () => {
        assert.deepEqual(spreadSample(10, 3), [0, 3, 6]);
        assert.deepEqual(spreadSample(2, 5), [0, 1]);
        assert.deepEqual(spreadSample(5, 0), []);
    });

    it("prints URLs without user:password or credential-like query values", () => {
        assert.equal(printableUrl("https://u:p@cdn.example/a.jpg?X-Amz-Signature=s&X-Amz-Credential=c&w=1"),
            "https://cdn.example/a.jpg?X-Amz-Signature=redacted&X-Amz-Credential=redacted&w=1");
        assert.equal(printableUrl("not a url"), "(an unparseable URL)");
    });

    it("reads a probe answer as Cloudflare would take the object", () => {
        assert.equal(probeFailure({ status: 206, head: pngBytes(1), size: 100 }), undefined);
        assert.equal(probeFailure({ status: 404 }), "HTTP 404");
        assert.equal(probeFailure({ networkError: "ECONNREFUSED" }), "network error ECONNREFUSED");
        assert.equal(probeFailure({ status: 200, size: 11 * 1024 * 1024, head: pngBytes(1) }), "11.0 MB, over the 10 MB upload limit");
        assert.equal(probeFailure({ status: 200, head: Buffer.from("II*\0rest") }), "unsupported format image/tiff");
        assert.equal(probeFailure({ status: 200, head: Buffer.from("<html>"), contentType: "text/html; charset=utf-8" }), "not an image (text/html)");
        assert.equal(rangeTotal("bytes 0-4095/123456"), 123456);
        assert.equal(rangeTotal(undefined), undefined);
    });

    it("prices storage at $5 per 100,000 images a month", () => {
        assert.equal(monthlyStorageUsd(96_000), 4.8);
        assert.equal(monthlyStorageUsd(1_000_000), 50);
    });
});
