// Layers import downward only (DESIGN.md): the program (index.ts, config.ts) -> components/ -> provider/. A static
// scan of every import, export-from, require() and import() in the .ts files of provider/ and components/.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";

const ROOT = path.resolve(__dirname, "../..");

/** Lower is deeper; a file may import its own layer or a deeper one. */
const LAYERS = ["provider", "components", "program"] as const;
type Layer = (typeof LAYERS)[number];

/** The layer of a file in the repository, or undefined outside the three (packages, test/, bench/). */
function layerOf(file: string): Layer | undefined {
    const relative = path.relative(ROOT, file);
    if (relative.startsWith("..") || path.isAbsolute(relative)) return undefined;
    const [top, ...rest] = relative.split(path.sep);
    if (top === "provider" || top === "components") return top;
    // A root module (index.ts, config.ts), named with or without its extension.
    if (rest.length === 0 && /^[^.]+(\.ts)?$/.test(top) && fs.existsSync(path.join(ROOT, top.replace(/(\.ts)?$/, ".ts")))) return "program";
    return undefined;
}

function tsFilesUnder(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) return entry.name === "node_modules" ? [] : tsFilesUnder(full);
        return entry.name.endsWith(".ts") ? [full] : [];
    });
}

/** Every upward import in one file's text, as `file: "specifier" (layer -> layer)`. */
function upwardImports(file: string, text: string): string[] {
    const from = layerOf(file);
    if (from === undefined) return [];
    const { importedFiles } = ts.preProcessFile(text, true, true);
    return importedFiles
        .filter(({ fileName }) => fileName.startsWith("."))
        .flatMap(({ fileName }) => {
            const to = layerOf(path.resolve(path.dirname(file), fileName));
            return to !== undefined && LAYERS.indexOf(to) > LAYERS.indexOf(from)
                ? [`${path.relative(ROOT, file)}: "${fileName}" (${from} -> ${to})`]
                : [];
        });
}

describe("layering", () => {
    it("no file under provider/ imports components/ or the program, and no file under components/ imports the program", () => {
        const files = [...tsFilesUnder(path.join(ROOT, "provider")), ...tsFilesUnder(path.join(ROOT, "components"))];
        assert.ok(files.some((f) => f.endsWith(path.join("provider", "redirect-rows-provider.ts"))), "the scan found the providers");
        assert.ok(files.some((f) => f.endsWith(path.join("components", "redirect", "worker", "index.ts"))), "the scan found the Worker");
        const bad = files.flatMap((file) => upwardImports(file, fs.readFileSync(file, "utf8")));
        assert.deepEqual(bad, []);
    });

    it("the scan sees every form of import: import, export-from, import type, require() and import()", () => {
        const provider = path.join(ROOT, "provider", "example.ts");
        const component = path.join(ROOT, "components", "redirect", "example.ts");
        const text = [
            `import { a } from "../components/redirect-layer";`,
            `export { b } from "../index";`,
            `import type { C } from "../config";`,
            `const d = require("../components/sources/s3");`,
            `const e = import("../components/image-id");`,
            `import { f } from "./backoff";`,
            `import * as z from "zod";`,
        ].join("\n");
        assert.deepEqual(upwardImports(provider, text), [
            `provider/example.ts: "../components/redirect-layer" (provider -> components)`,
            `provider/example.ts: "../index" (provider -> program)`,
            `provider/example.ts: "../config" (provider -> program)`,
            `provider/example.ts: "../components/sources/s3" (provider -> components)`,
            `provider/example.ts: "../components/image-id" (provider -> components)`,
        ]);
        assert.deepEqual(upwardImports(component, `import { x } from "../../index";\nimport { y } from "../../provider/redirect/paths";`), [
            `components/redirect/example.ts: "../../index" (components -> program)`,
        ]);
    });
});
