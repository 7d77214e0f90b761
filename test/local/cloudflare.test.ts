// The local Cloudflare: emulator, redirect Worker in workerd and the old origin, wired on one D1, over real HTTP.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { PortInUseError, startLocalCloudflare, type LocalCloudflare, type LocalCloudflareOptions } from "../../local/cloudflare";
import { fileFor } from "../../local/static-origin";

const EXAMPLES = path.join(__dirname, "..", "..", "examples");
const RED_SHOE = fs.readFileSync(path.join(EXAMPLES, "images", "products", "red-shoe.png"));
const LOGO = fs.readFileSync(path.join(EXAMPLES, "images", "logo.png"));
const IMAGE_ID = "examples/products/red-shoe.png";
const OLD_PATH = "/images/products/red-shoe.png";

/** True when something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        socket.once("connect", () => { socket.destroy(); resolve(true); });
        socket.once("error", () => resolve(false));
    });
}

/** PIDs of workerd processes whose parent is this process (miniflare's runtime). */
function workerdChildren(): number[] {
    return fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).flatMap((pid) => {
        try {
            const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
            const [, comm, rest] = /^\d+ \((.*)\) (.*)$/s.exec(stat) ?? [];
            return comm === "workerd" && Number(rest.split(" ")[1]) === process.pid ? [Number(pid)] : [];
        } catch {
            return [];
        }
    });
}

const portOf = (url: string): number => Number(new URL(url).port);

describe("local Cloudflare (local/cloudflare.ts)", function () {
    let stateDir: string;
    let cf: LocalCloudflare | undefined;
    const options = (): LocalCloudflareOptions => ({ stateDir, accountId: "acc-local", accountHash: "hash-local", tokens: ["tok"] });

    const api = (method: string, route: string, body?: FormData | object) => fetch(`${cf!.apiBaseUrl}/accounts/acc-local${route}`, {
        method,
        headers: { authorization: "Bearer tok", ...(body && !(body instanceof FormData) ? { "content-type": "application/json" } : {}) },
        body: body instanceof FormData ? body : body && JSON.stringify(body),
    });
    const deliveryUrl = (id: string) => `${cf!.deliveryBaseUrl}/hash-local/${id}/public`;

    before(async () => {
        stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "sk-local-cf-"));
        cf = await startLocalCloudflare(options());
    });

    after(async () => {
        await cf?.stop();
        fs.rmSync(stateDir, { recursive: true, force: true });
    });

    it("binds every service to 127.0.0.1 and names its URLs", () => {
        for (const url of [cf!.apiBaseUrl, cf!.deliveryBaseUrl, cf!.workerUrl, cf!.originUrl]) assert.match(url, /^http:\/\/127\.0\.0\.1:\d+/);
        assert.equal(cf!.apiBaseUrl, `http://127.0.0.1:${cf!.emulator.port}/client/v4`);
        assert.equal(cf!.deliveryBaseUrl, `http://127.0.0.1:${cf!.emulator.port}/cdn-cgi/imagedelivery`);
    });

    it("redirects an old path written through the D1 HTTP API to the uploaded image, whose delivery URL serves its bytes", async () => {
        const form = new FormData();
        form.append("file", new Blob([RED_SHOE]), "red-shoe.png");
        form.append("id", IMAGE_ID);
        assert.equal((await api("POST", "/images/v1", form)).status, 200);
        const write = await api("POST", `/d1/database/${cf!.databaseId}/query`, {
            sql: "INSERT INTO redirects (path, location, image_id, shard, updated_at) VALUES (?1, ?2, ?3, 'local-test', 0)",
            params: [OLD_PATH, deliveryUrl(IMAGE_ID), IMAGE_ID],
        });
        assert.equal(write.status, 200, await write.clone().text());

        const redirect = await fetch(`${cf!.workerUrl}${OLD_PATH}`, { redirect: "manual" });
        assert.equal(redirect.status, 301);
        assert.equal(redirect.headers.get("location"), deliveryUrl(IMAGE_ID));
        assert.equal(redirect.headers.get("x-redirect-source"), "d1");
        const image = await fetch(redirect.headers.get("location")!);
        assert.equal(image.status, 200);
        assert.equal(image.headers.get("content-type"), "image/png");
        assert.ok(Buffer.from(await image.arrayBuffer()).equals(RED_SHOE));
    });

    it("fetches an unmapped path from the old origin (examples/ by default)", async () => {
        const res = await fetch(`${cf!.workerUrl}/images/logo.png`, { redirect: "manual" });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("x-redirect-source"), "d1"); // looked up, not found, passed through
        assert.equal(res.headers.get("content-type"), "image/png");
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(LOGO));
        assert.ok(cf!.oldOrigin.requests.some((r) => r.path === "/images/logo.png"));
        assert.equal((await fetch(`${cf!.workerUrl}/images/none.png`)).status, 404);
    });

    it("refuses a port in use before starting anything, with one line naming the port and the fix (no workerd stack)", async () => {
        const port = portOf(cf!.workerUrl);
        const started = workerdChildren().length;
        const printed: string[] = [];
        const write = process.stderr.write;
        process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
            printed.push(String(chunk));
            return (write as (...a: unknown[]) => boolean).call(process.stderr, chunk, ...rest);
        }) as typeof process.stderr.write;
        try {
            await assert.rejects(startLocalCloudflare({ ports: { worker: port } }), (error: Error) => {
                assert.ok(error instanceof PortInUseError);
                assert.equal(error.message.split("\n").length, 1);
                assert.match(error.message, new RegExp(`^port ${port} on 127\\.0\\.0\\.1 is already in use, so the redirect Worker \\(workerd\\) cannot start: .*ports\\.worker; 0 picks a free one\\)$`));
                return true;
            });
        } finally {
            process.stderr.write = write;
        }
        assert.equal(workerdChildren().length, started);
        assert.deepEqual(printed.filter((line) => /kj::Exception|Address already in use/.test(line)), []);
    });

    it("keeps images and rows across a restart on the same stateDir, and stop() leaves no port listening", async () => {
        const first = cf!;
        const ports = [first.emulator.port, portOf(first.workerUrl), portOf(first.originUrl)];
        assert.ok(workerdChildren().length >= 1);
        await first.stop();
        cf = undefined;
        for (const port of ports) assert.equal(await listening(port), false, `port ${port} still listening`);
        assert.deepEqual(workerdChildren(), []);

        // The stored delivery URL names the API port, so the restart keeps it, as `npm start` does with fixed ports.
        cf = await startLocalCloudflare({ ...options(), ports: { api: ports[0] } });
        const redirect = await fetch(`${cf.workerUrl}${OLD_PATH}`, { redirect: "manual" });
        assert.equal(redirect.status, 301);
        const image = await fetch(redirect.headers.get("location")!);
        assert.ok(Buffer.from(await image.arrayBuffer()).equals(RED_SHOE));
        assert.ok(fs.existsSync(path.join(stateDir, "images.json")));
    });

    it("answers from the old origin before the schema exists (x-redirect-source: error), never a 5xx", async () => {
        const bare = await startLocalCloudflare({ applySchema: false });
        try {
            const res = await fetch(`${bare.workerUrl}/images/logo.png`, { redirect: "manual" });
            assert.equal(res.status, 200);
            assert.equal(res.headers.get("x-redirect-source"), "error");
            assert.ok(Buffer.from(await res.arrayBuffer()).equals(LOGO));
        } finally {
            await bare.stop();
        }
    });

    it("serves only files inside the origin folder (pure)", () => {
        assert.equal(fileFor("/site", "/images/a.png?x=1"), "/site/images/a.png");
        assert.equal(fileFor("/site", "/caf%C3%A9.png"), "/site/café.png");
        assert.equal(fileFor("/site", "/..%2F..%2Fetc/passwd"), undefined);
        assert.equal(fileFor("/site", "/%2e%2e/etc/passwd"), "/site/etc/passwd");
        assert.equal(fileFor("/site", "/a%00b"), undefined);
        assert.equal(fileFor("/site", "/%E0%A4%A"), undefined);
    });
});
