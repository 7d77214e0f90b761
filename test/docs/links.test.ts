// The project's Markdown must stand alone: every relative link (and every `../`-style path in code spans) in a
// tracked .md file names a file or folder inside the repository.
import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const ROOT = path.resolve(__dirname, "../..");

const markdownFiles = (): string[] =>
    execFileSync("git", ["ls-files", "-z", "--", "*.md"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter((f) => f && !f.startsWith("node_modules/"));

/**
 * Relative targets in one file: `[text](target)` links (no URL scheme, no bare #anchor), which must exist, and code
 * spans starting with ./ or ../, which may name generated files (`./.pulumi/`) but never leave the repository.
 */
function relativeTargets(text: string): { target: string; mustExist: boolean }[] {
    const links = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => ({ target: m[1], mustExist: true }));
    const spans = [...text.matchAll(/`(\.{1,2}\/[^`\s]*)`/g)].map((m) => ({ target: m[1], mustExist: false }));
    return [...links, ...spans]
        .filter(({ target }) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith("#"))
        .map(({ target, mustExist }) => ({ target: target.split("#")[0], mustExist }))
        .filter(({ target }) => target !== "");
}

describe("documentation links", () => {
    it("every relative link or path in the project's Markdown stays inside the repository, and every linked file exists", () => {
        const files = markdownFiles();
        assert.ok(files.includes("README.md") && files.includes("test/emulator/README.md"), `found ${files.join(", ")}`);
        const bad: string[] = [];
        for (const file of files) {
            for (const { target, mustExist } of relativeTargets(fs.readFileSync(path.join(ROOT, file), "utf8"))) {
                const resolved = path.resolve(ROOT, path.dirname(file), decodeURI(target));
                const inside = resolved === ROOT || resolved.startsWith(ROOT + path.sep);
                if (!inside) bad.push(`${file}: ${target} is outside the repository`);
                else if (mustExist && !fs.existsSync(resolved)) bad.push(`${file}: ${target} does not exist`);
            }
        }
        assert.deepEqual(bad, []);
    });
});
