// `npm run worker:export`: the wrangler project a team deploys itself (redirects.deployWorker false). The exported
// worker.js runs in workerd with exactly the vars and D1 binding its wrangler.toml declares.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Miniflare } from "miniflare";
import { workerVars } from "../../components/redirect/settings";
import { applyRedirectSchema, miniflareRoot } from "../../local/redirect-worker";
import { upsertStatements } from "../../provider/redirect/rows";
import { wranglerToml, writeWorkerProject, type RedirectWorkerOutput } from "../../wrangler/export";

const WORKER: RedirectWorkerOutput = {
    deployed: false, mainModule: "worker.js", compatibilityDate: "2025-01-01", databaseId: "6f1c1a40-0d5e-4c3b-9a57-2f7d2b3c4d5e",
    vars: workerVars({ fallback: "404", redirectMaxAgeSeconds: 600 }),
};

/** The `key = "value"` lines of one [table] of the generated TOML (what wrangler reads), JSON-unescaped. */
function table(toml: string, name: string): Record<string, string> {
    const body = toml.split(`\n${name}\n`)[1]?.split("\n\n")[0] ?? "";
    return Object.fromEntries(body.split("\n").filter((l) => l.includes(" = ")).map((l) => {
        const [key, value] = l.split(" = ");
        return [key!, JSON.parse(value!) as string];
    }));
}

describe("worker:export: the redirect Worker as a wrangler project", function () {
    let dir: string;
    before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "sk-export-"))));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("writes a route or a custom domain, the stack's vars and its D1 binding, quoting what TOML needs", () => {
        const toml = wranglerToml(WORKER, { name: "media-redirects", route: { pattern: "media.example.com/*", zoneId: "z1" } }, "prod");
        assert.match(toml, /^name = "media-redirects"$/m);
        assert.match(toml, /^main = "worker.js"$/m);
        assert.match(toml, /^compatibility_date = "2025-01-01"$/m);
        assert.match(toml, /^routes = \[\{ pattern = "media.example.com\/\*", zone_id = "z1" \}\]$/m);
        assert.deepEqual(table(toml, "[vars]"), WORKER.vars);
        assert.deepEqual(table(toml, "[[d1_databases]]"), { binding: "DB", database_name: "media-redirects-db", database_id: WORKER.databaseId });
        const custom = wranglerToml({ ...WORKER, vars: { ORIGIN_URL: 'https://o.example/"x"' } }, { name: "r", customDomain: "img.example.com" }, "prod");
        assert.match(custom, /^routes = \[\{ pattern = "img.example.com", custom_domain = true \}\]$/m);
        assert.match(custom, /^ORIGIN_URL = "https:\/\/o.example\/\\"x\\""$/m);
    });

    it("the exported worker.js, schema.sql and vars answer 301 from D1 and 404 for unmapped paths in workerd", async () => {
        const files = writeWorkerProject(dir, WORKER, { name: "media-redirects" }, "prod");
        assert.deepEqual(files.map((f) => path.basename(f)), ["worker.js", "schema.sql", "wrangler.toml"]);
        const toml = fs.readFileSync(path.join(dir, "wrangler.toml"), "utf8");
        const storage = miniflareRoot();
        const mf = new Miniflare({
            cf: false, defaultPersistRoot: storage.root,
            modules: [{ type: "ESModule", path: "worker.js", contents: fs.readFileSync(path.join(dir, "worker.js"), "utf8") }],
            compatibilityDate: /^compatibility_date = "(.*)"$/m.exec(toml)![1],
            bindings: table(toml, "[vars]"),
            d1Databases: { DB: table(toml, "[[d1_databases]]").database_id! },
        });
        try {
            const db = await mf.getD1Database("DB");
            const sql = fs.readFileSync(path.join(dir, "schema.sql"), "utf8");
            assert.ok(sql.includes("CREATE TABLE IF NOT EXISTS redirects"));
            await applyRedirectSchema(db);
            const location = "https://imagedelivery.net/h/shop/a.png/public";
            await db.batch(upsertStatements("redirects-rows-all", { "/a.png": location }).map((s) => db.prepare(s.sql).bind(...s.params)));
            const hit = await mf.dispatchFetch("http://media.example.com/a.png", { redirect: "manual" });
            assert.equal(hit.status, 301);
            assert.equal(hit.headers.get("location"), location);
            assert.equal(hit.headers.get("cache-control"), "public, max-age=600");
            await hit.arrayBuffer();
            const miss = await mf.dispatchFetch("http://media.example.com/none.png", { redirect: "manual" });
            assert.equal(miss.status, 404);
            await miss.arrayBuffer();
        } finally {
            await storage.dispose(mf);
        }
    });
});
