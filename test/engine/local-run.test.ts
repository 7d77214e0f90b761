// The README's quick start and "Trying it locally", as a new user runs them, in a copy of the project with the real
// CLI: `npm start` (local Cloudflare, pulumi up, verify, summary), `curl -sI` of an old URL, a plain `kill`, `npm start`
// again (a no-op), `npm run local -- verify` finding injected damage, and `npm run local -- destroy`.
import { strict as assert } from "assert";
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { describeEngine } from "./cli";
import { EngineProject, killGroup } from "./project";
import { LOCAL } from "../../local/start";

const LOCAL_FILES = ["Pulumi.local.yaml", "examples", "local", "verify", "scripts", "test/emulator"];
const API = `http://127.0.0.1:${LOCAL.ports.api}/client/v4/accounts/${LOCAL.accountId}`;

function listening(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        socket.once("connect", () => { socket.destroy(); resolve(true); });
        socket.once("error", () => resolve(false));
    });
}

const ports = Object.values(LOCAL.ports);

/** The README's fenced block after `marker`, as lines. */
function readmeBlock(marker: string, fence: string): string[] {
    const text = fs.readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");
    const at = text.indexOf(marker);
    assert.ok(at >= 0, `README.md: no "${marker}"`);
    const block = new RegExp("```" + fence + "\\n([\\s\\S]*?)```").exec(text.slice(at));
    assert.ok(block, `README.md: no ${fence} block after "${marker}"`);
    return block[1].split("\n").filter((l) => l.trim() !== "");
}

describeEngine("real engine: npm start, the local run a new user starts with", function () {
    this.timeout(300_000);
    let project: EngineProject;
    const running = new Set<ChildProcess>();

    /** `npm <args>` in the copy, in its own process group; `until` resolves once its output contains the text. */
    function npm(args: string[], env: Record<string, string | undefined> = {}) {
        // Its own temp folder, so the test sees what the local run leaves there.
        const child = spawn("npm", args, { cwd: project.root, env: project.commandEnv({ TMPDIR: tmp(), ...env }), detached: true, stdio: ["ignore", "pipe", "pipe"] });
        running.add(child);
        let output = "";
        child.stdout!.setEncoding("utf8").on("data", (d: string) => (output += d));
        child.stderr!.setEncoding("utf8").on("data", (d: string) => (output += d));
        const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => {
            running.delete(child);
            resolve(code);
        }));
        const until = (text: string) => new Promise<string>((resolve, reject) => {
            const check = setInterval(() => {
                if (output.includes(text)) {
                    clearInterval(check);
                    resolve(output);
                }
            }, 100);
            void exited.then((code) => {
                clearInterval(check);
                if (!output.includes(text)) reject(new Error(`npm ${args.join(" ")} exited ${code} before printing "${text}":\n${output}`));
                else resolve(output);
            });
        });
        return { child, exited, until, output: () => output };
    }

    const tmp = () => path.join(project.root, "tmp");
    /** What the local run left in its temp folder (miniflare's storage is removed on every way out). */
    const leftovers = () => fs.readdirSync(tmp()).filter((name) => !name.startsWith("v8-compile-cache"));

    before(async () => {
        for (const port of ports) assert.ok(!(await listening(port)), `port ${port} (the local stack's) is in use: stop what listens there`);
        project = await EngineProject.create({ extraFiles: LOCAL_FILES });
        fs.mkdirSync(tmp());
    });
    after(async () => {
        for (const child of running) killGroup(child, "SIGKILL");
        await project?.close();
    });

    it("says what to do, before starting anything, when a port is taken or there is no Pulumi CLI", async () => {
        const taken = net.createServer().listen(LOCAL.ports.origin, "127.0.0.1");
        await new Promise((resolve) => taken.once("listening", resolve));
        try {
            const start = npm(["start"]);
            assert.equal(await start.exited, 2);
            assert.match(start.output(), new RegExp(`port ${LOCAL.ports.origin} on 127\\.0\\.0\\.1 is already in use, so the old origin \\(static files\\) cannot start: stop what listens there`));
        } finally {
            await new Promise((resolve) => taken.close(resolve));
        }
        // No pulumi on PATH and an empty build cache: the CLI is looked for, never built behind the user's back.
        const bare = path.join(project.root, "no-cache");
        const noCli = npm(["start"], { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, XDG_CACHE_HOME: bare, SOURCING_KIT_PULUMI_DIR: undefined });
        assert.equal(await noCli.exited, 2);
        assert.match(noCli.output(), /npm start: the Pulumi CLI was not found: install it .* or run scripts\/pulumi-cli\.sh/);
        assert.deepEqual(await Promise.all(ports.map(listening)), [false, false, false]);
    });

    let first = "";

    it("npm start migrates the examples with the real CLI, verifies them and prints the README's summary", async () => {
        // Type-checked as users run it; the later commands skip tsc (PULUMI_NODEJS_TRANSPILE_ONLY, 4 s each).
        const start = npm(["start"], { PULUMI_NODEJS_TRANSPILE_ONLY: undefined });
        first = await start.until("Serving until Ctrl-C");
        for (const line of readmeBlock("## Quick start", "text")) assert.ok(first.includes(line), `README line not printed: ${line}\n---\n${first}`);
        assert.match(first, /Resources:\n\s+\+ 7 created/);

        // What the README tells the user to try: the old URL's 301, and the delivery URL's bytes.
        const [curl] = readmeBlock("## Quick start", "text").filter((l) => l.trim().startsWith("curl -sI"));
        const head = execFileSync("bash", ["-c", curl!.trim()], { encoding: "utf8" });
        assert.match(head, /^HTTP\/1\.1 301/);
        const location = /^location: (\S+)/im.exec(head)![1]!;
        assert.equal(location, `http://127.0.0.1:${LOCAL.ports.api}/cdn-cgi/imagedelivery/${LOCAL.accountHash}/examples/logo.png/public`);
        const delivered = Buffer.from(await (await fetch(location)).arrayBuffer());
        assert.deepEqual(delivered, fs.readFileSync(path.join(project.root, "examples", "images", "logo.png")));
        const unmapped = await fetch(`http://127.0.0.1:${LOCAL.ports.worker}/README.txt`);
        assert.match(await unmapped.text(), /Sample images for the local stack/, "an unmapped path comes from the old site");

        // A plain kill of npm's own process (npm does not pass it on): every process and port goes.
        const node = execFileSync("pgrep", ["-P", String(start.child.pid)], { encoding: "utf8" }).trim().split("\n").map(Number);
        process.kill(start.child.pid!, "SIGTERM");
        await start.exited;
        for (let i = 0; i < 100 && (await Promise.all(ports.map(listening))).some(Boolean); i++) await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(await Promise.all(ports.map(listening)), [false, false, false], "no port left listening");
        for (const pid of node) assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} outlived npm start`);
        assert.deepEqual(leftovers(), [], "nothing left in the temp folder");
    });

    it("after a run killed halfway, npm start names the commands that unlock the stack, and they work", async () => {
        // What a SIGKILLed `pulumi up` leaves in a file backend: a lock file of the stack.
        const locks = path.join(project.root, ".local", "pulumi", ".pulumi", "locks", "organization", "sourcing-kit", "local");
        fs.mkdirSync(locks, { recursive: true });
        fs.writeFileSync(path.join(locks, "0b5c5c5e-9a1d-4a5e-8c52-2f0d3a7e1b11.json"),
            JSON.stringify({ pid: 999999, username: "someone", hostname: "elsewhere", timestamp: new Date().toISOString() }));
        const start = npm(["start"]);
        assert.notEqual(await start.exited, 0);
        const advice = /run `npm run local -- (cancel --yes)`, then `npm run local -- (refresh --clear-pending-creates --yes)`, then `npm start` again/.exec(start.output());
        assert.ok(advice, start.output());
        // cancel removes the lock (the next test's npm start then runs); refresh --clear-pending-creates after a real
        // SIGKILL is crash.test.ts's.
        const cancel = npm(["run", "local", "--", ...advice[1]!.split(" ")]);
        assert.equal(await cancel.exited, 0, cancel.output());
        assert.deepEqual(fs.readdirSync(locks), [], "the lock is gone");
        assert.deepEqual(await Promise.all(ports.map(listening)), [false, false, false]);
    });

    it("npm start again changes nothing, and npm run local -- verify names each injected fault", async () => {
        const again = npm(["start"]);
        const output = await again.until("Serving until Ctrl-C");
        assert.match(output, /Resources:\n\s+7 unchanged/);
        assert.match(output, /verify: OK, everything matches/);

        // Damage a user could meet: an image deleted outside Pulumi, one replaced, a redirect row changed.
        const api = (method: string, route: string, body?: object) => fetch(`${API}${route}`, {
            method, headers: { authorization: `Bearer ${LOCAL.token}`, "content-type": "application/json" }, body: body && JSON.stringify(body),
        });
        assert.equal((await api("DELETE", "/images/v1/examples%2Flogo.png")).status, 200);
        assert.equal((await api("PATCH", "/images/v1/examples%2Fproducts%2Fred-shoe.png", { metadata: { _skh: "sha256:someone-else" } })).status, 200);
        const d1 = await api("POST", `/d1/database/${LOCAL.databaseId}/query`,
            { sql: "UPDATE redirects SET location = ? WHERE path = ?", params: ["https://elsewhere.example/x.png", "/products/blue-shoe.png"] });
        assert.equal(d1.status, 200);

        try {
            await verifyNames();
        } finally {
            // Ctrl-C reaches the terminal's whole process group: npm exits 130 as for any interrupted script.
            process.kill(-again.child.pid!, "SIGINT");
            assert.ok([0, 130].includes((await again.exited)!), again.output());
        }
        assert.deepEqual(await Promise.all(ports.map(listening)), [false, false, false], "Ctrl-C stops every service");
        assert.deepEqual(leftovers(), [], "nothing left in the temp folder");
    });

    async function verifyNames(): Promise<void> {
        const verify = npm(["run", "local", "--", "verify"]);
        assert.equal(await verify.exited, 1);
        const problems = verify.output().split("\n").filter((l) => l.startsWith("  - ")).map((l) => l.split(":").slice(0, 2).join(":"));
        assert.deepEqual(problems, [
            "  - redirect /products/blue-shoe.png: wrong-row",
            "  - image examples/logo.png: missing",
            "  - image examples/products/red-shoe.png: wrong-hash",
        ]);
        assert.match(verify.output(), /verify: FAILED, 3 problems/);
    }

    it("npm run local -- destroy rolls it all back: images and redirect rows", async () => {
        const destroy = npm(["run", "local", "--", "destroy", "--yes"]);
        assert.equal(await destroy.exited, 0, destroy.output());
        assert.match(destroy.output(), /- 7 deleted/);
        const stored = JSON.parse(fs.readFileSync(path.join(project.root, ".local", "cloudflare", "images.json"), "utf8"));
        assert.deepEqual(stored.images, []);
        assert.deepEqual(await Promise.all(ports.map(listening)), [false, false, false]);
        assert.ok(!fs.readFileSync(path.join(project.root, ".local", "pulumi", ".pulumi", "stacks", "sourcing-kit", "local.json"), "utf8").includes(LOCAL.token));
    });
});
