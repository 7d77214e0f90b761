// The miniflare fixtures leave nothing in the system temp folder, even when the process exits right after
// dispose() (mocha runs with --exit): each runs in a child process whose TMPDIR is a fresh folder of this test's.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "../..");

const FIXTURES: Record<string, string> = {
    "test/redirect/fixtures.ts startRedirectWorkers": `
        const { startRedirectWorkers } = require("./test/redirect/fixtures");
        const w = await startRedirectWorkers([{ name: "a", bindings: { FALLBACK: "404" } }, { name: "b", bindings: { FALLBACK: "404" }, databaseId: "other" }]);
        await w.db.prepare("INSERT INTO redirects (path, location, shard, updated_at) VALUES ('/x', 'https://imagedelivery.net/h/x/public', 's', 0)").bind().run();
        if ((await w.fetch("a", "http://old.test/x")).status !== 301) throw new Error("no redirect");
        await w.dispose();`,
    "test/reliability/redirect-worker.ts startRedirectWorker": `
        const { startRedirectWorker } = require("./test/reliability/redirect-worker");
        const w = await startRedirectWorker({ FALLBACK: "404" });
        await w.db.prepare("INSERT INTO redirects (path, location, shard, updated_at) VALUES ('/x', 'https://imagedelivery.net/h/x/public', 's', 0)").bind().run();
        if ((await w.fetch("http://old.test/x")).status !== 301) throw new Error("no redirect");
        await w.dispose();`,
};

describe("miniflare fixtures and the temp folder", function () {
    this.timeout(120_000);
    let tmp: string;
    beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sk-tmp-check-"))));
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    for (const [name, body] of Object.entries(FIXTURES)) {
        it(`${name}: dispose() removes everything it created in os.tmpdir(), with the process exiting at once`, () => {
            const run = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", `(async () => {${body}\n})().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });`], {
                cwd: ROOT, encoding: "utf8", env: { ...process.env, TMPDIR: tmp, TMP: tmp, TEMP: tmp },
            });
            assert.equal(run.status, 0, run.stderr);
            // ts-node's own compile cache (v8-compile-cache-lib) is one fixed folder it reuses, not a leftover of a run.
            assert.deepEqual(fs.readdirSync(tmp).filter((f) => !f.startsWith("v8-compile-cache-")), []);
        });
    }
});
