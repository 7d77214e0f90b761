// Old links followed in a real browser: an old site's page, served through the local redirect Worker, rendered by
// headless Chromium. Mapped images arrive through the 301 from Cloudflare Images delivery, unmapped ones from the old
// origin, and an image deleted from Images while its old URL still redirects shows as broken.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { BrowserContext, Response } from "playwright-core";
import { startLocalCloudflare, type LocalCloudflare } from "../../local/cloudflare";
import { pngBytes } from "../emulator/fixtures";
import { jpegOfSize, pixelSize } from "./image-fixtures";

const CHROMIUM = "/usr/bin/chromium";
const REQUIRED = process.env.SOURCING_KIT_BROWSER_TESTS === "required";
/** The flags of a quiet, offline headless run; the resolver rule keeps every name but 127.0.0.1 from resolving. */
const CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
];

const TOKEN = "browser-token";
const HASH = "hash-browser";

/** Old path -> source bytes. Mapped images are not on the old origin: they can only render through the redirect. */
const MAPPED: Record<string, Buffer> = {
    "/images/hero.png": pngBytes(1, { width: 40, height: 30 }),
    "/images/photo.jpg": jpegOfSize(24, 16),
    "/images/logo.png": fs.readFileSync(path.join(__dirname, "..", "..", "examples", "images", "logo.png")),
};
const UNMAPPED = { path: "/images/still-on-origin.png", bytes: pngBytes(2, { width: 13, height: 7 }) };
/** Its row stays; its image is deleted from Cloudflare Images (what users meet when an image is removed there). */
const REMOVED = { path: "/images/removed.png", bytes: pngBytes(3, { width: 20, height: 10 }) };

const imageIdOf = (oldPath: string) => `site${oldPath}`;

/** PIDs of processes started by this one whose command line names `needle` (the browser, by its profile folder). */
function childPidsNaming(needle: string): number[] {
    return fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).flatMap((pid) => {
        try {
            const parent = Number(/^\d+ \(.*\) \S+ (\d+)/s.exec(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))?.[1]);
            return parent === process.pid && fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(needle) ? [Number(pid)] : [];
        } catch {
            return [];
        }
    });
}

const alive = (pid: number): boolean => {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
};

interface Rendered { id: string; complete: boolean; naturalWidth: number; naturalHeight: number }

function describeBrowser(title: string, body: (this: Mocha.Suite) => void): void {
    if (fs.existsSync(CHROMIUM)) {
        describe(title, body);
        return;
    }
    const why = `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\` (Debian; .ci/run does)`;
    if (REQUIRED) {
        describe(title, () => it("finds Chromium (SOURCING_KIT_BROWSER_TESTS=required)", () => { throw new Error(why); }));
        return;
    }
    console.warn(`\n  !!! SKIPPING the browser test: ${why}; set SOURCING_KIT_BROWSER_TESTS=required to fail instead\n`);
    describe.skip(`${title} (skipped: no Chromium)`, body);
}

describeBrowser("old links in a real browser (headless Chromium, local Cloudflare)", function () {
    this.timeout(30_000);
    let siteDir: string;
    let profileDir: string;
    let cf: LocalCloudflare | undefined;
    let context: BrowserContext | undefined;
    let browserPids: number[] = [];
    let workerdPids: number[] = [];
    const responses: { url: string; status: number; headers: Record<string, string> }[] = [];
    let images: Record<string, Rendered>;

    const api = async (method: string, route: string, body?: FormData | object) => {
        const res = await fetch(`${cf!.apiBaseUrl}/accounts/acc-browser${route}`, {
            method,
            headers: { authorization: `Bearer ${TOKEN}`, ...(body && !(body instanceof FormData) ? { "content-type": "application/json" } : {}) },
            body: body instanceof FormData ? body : body && JSON.stringify(body),
        });
        assert.equal(res.status, 200, `${method} ${route}: ${await res.text()}`);
    };
    const deliveryUrl = (oldPath: string) => `${cf!.deliveryBaseUrl}/${HASH}/${imageIdOf(oldPath)}/public`;
    const answerTo = (url: string) => responses.find((r) => r.url === url);

    before(async () => {
        // The old site: one page and the image that was never migrated.
        siteDir = fs.mkdtempSync(path.join(os.tmpdir(), "sk-old-site-"));
        fs.mkdirSync(path.join(siteDir, "images"));
        fs.writeFileSync(path.join(siteDir, UNMAPPED.path), UNMAPPED.bytes);
        const tags = [...Object.keys(MAPPED), UNMAPPED.path, REMOVED.path].map((p) => `<img id="${p}" src="${p}" alt="">`);
        fs.writeFileSync(path.join(siteDir, "index.html"), `<!doctype html><title>old site</title>\n${tags.join("\n")}\n`);

        cf = await startLocalCloudflare({ originDir: siteDir, accountId: "acc-browser", accountHash: HASH, tokens: [TOKEN] });
        workerdPids = childPidsNaming("workerd");
        for (const [oldPath, bytes] of [...Object.entries(MAPPED), [REMOVED.path, REMOVED.bytes] as const]) {
            const form = new FormData();
            form.append("file", new Blob([bytes]), path.basename(oldPath));
            form.append("id", imageIdOf(oldPath));
            await api("POST", "/images/v1", form);
            await api("POST", `/d1/database/${cf.databaseId}/query`, {
                sql: "INSERT INTO redirects (path, location, image_id, shard, updated_at) VALUES (?1, ?2, ?3, 'browser-test', 0)",
                params: [oldPath, deliveryUrl(oldPath), imageIdOf(oldPath)],
            });
        }
        await api("DELETE", `/images/v1/${encodeURIComponent(imageIdOf(REMOVED.path))}`);

        profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "sk-chromium-profile-"));
        const { chromium } = await import("playwright-core");
        // launch() refuses --user-data-dir; launchPersistentContext passes our empty folder as exactly that.
        context = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
        browserPids = childPidsNaming(profileDir);
        const page = context.pages()[0] ?? (await context.newPage());
        page.on("response", (res: Response) => void responses.push({ url: res.url(), status: res.status(), headers: res.headers() }));
        await page.goto(`${cf.workerUrl}/index.html`, { waitUntil: "load" });
        images = Object.fromEntries((await page.$$eval("img", (tags) => tags.map((img) => ({
            id: img.id, complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
        })))).map((r) => [r.id, r]));
    });

    after(async () => {
        await context?.close().catch(() => undefined);
        for (const pid of browserPids) if (alive(pid)) process.kill(pid, "SIGKILL");
        await cf?.stop();
        for (const pid of workerdPids) if (alive(pid)) process.kill(pid, "SIGKILL");
        for (const dir of [profileDir, siteDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    });

    it("started one browser process of its own, with the empty profile folder, and one workerd", () => {
        assert.equal(browserPids.length, 1);
        assert.equal(workerdPids.length, 1);
    });

    it("renders every mapped image at its source's pixel size, through the Worker's 301 to Cloudflare Images delivery", () => {
        for (const [oldPath, bytes] of Object.entries(MAPPED)) {
            const { width, height } = pixelSize(bytes);
            assert.deepEqual(images[oldPath], { id: oldPath, complete: true, naturalWidth: width, naturalHeight: height }, oldPath);
            const redirect = answerTo(`${cf!.workerUrl}${oldPath}`);
            assert.equal(redirect?.status, 301, oldPath);
            assert.equal(redirect?.headers.location, deliveryUrl(oldPath), oldPath);
            assert.equal(answerTo(deliveryUrl(oldPath))?.status, 200, oldPath);
        }
        assert.equal(new Set(Object.values(MAPPED).map((b) => JSON.stringify(pixelSize(b)))).size, Object.keys(MAPPED).length, "sizes are distinct");
    });

    it("renders an unmapped image from the old origin (looked up in D1, not found, passed through)", () => {
        const { width, height } = pixelSize(UNMAPPED.bytes);
        assert.deepEqual(images[UNMAPPED.path], { id: UNMAPPED.path, complete: true, naturalWidth: width, naturalHeight: height });
        const answer = answerTo(`${cf!.workerUrl}${UNMAPPED.path}`);
        assert.equal(answer?.status, 200);
        assert.equal(answer?.headers["x-redirect-source"], "d1");
        assert.ok(cf!.oldOrigin.requests.some((r) => r.path === UNMAPPED.path), "the old origin served it");
        for (const oldPath of Object.keys(MAPPED)) assert.ok(!cf!.oldOrigin.requests.some((r) => r.path === oldPath), `${oldPath} never reached the origin`);
    });

    it("shows an image deleted from Cloudflare Images as broken while its old URL still redirects", () => {
        assert.deepEqual(images[REMOVED.path], { id: REMOVED.path, complete: true, naturalWidth: 0, naturalHeight: 0 });
        assert.equal(answerTo(`${cf!.workerUrl}${REMOVED.path}`)?.status, 301);
        assert.equal(answerTo(deliveryUrl(REMOVED.path))?.status, 404);
    });
});
