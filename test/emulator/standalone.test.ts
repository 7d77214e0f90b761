// Persistence to a JSON file and the standalone CLI (`npm run emulator`).
import * as assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { startEmulator } from "./index";
import { FLAGS, parseCli } from "./cli";
import { pngBytes } from "./fixtures";
import { call, uploadForm } from "./http-helpers";
import { descendants, killGroup } from "../engine/project";

const ROOT = path.resolve(__dirname, "../..");

/** Starts the CLI exactly as `npm run emulator` does and resolves with the first stdout line once it is printed. */
function startCli(args: string[]): Promise<{ child: ChildProcess; firstLine: string; port: number }> {
  const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "test/emulator/cli.ts", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    child.stdout!.on("data", (d) => {
      out += d;
      const firstLine = out.split("\n")[0];
      const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(firstLine);
      if (m && out.includes("\n")) resolve({ child, firstLine, port: Number(m[1]) });
    });
    child.on("exit", (code) => reject(new Error(`emulator CLI exited with ${code} before listening: ${err}`)));
  });
}

/**
 * Runs `npm run emulator -- ...args` (npm itself, its script shell included) in a process group of its own and
 * resolves once the emulator prints its listening line.
 */
function startNpmEmulator(args: string[]): Promise<{ npm: ChildProcess; port: number }> {
  const npm = spawn("npm", ["run", "--silent", "emulator", "--", ...args], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    npm.stderr!.on("data", (d) => (err += d));
    npm.stdout!.on("data", (d) => {
      out += d;
      const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/m.exec(out);
      if (m) resolve({ npm, port: Number(m[1]) });
    });
    npm.on("exit", (code) => reject(new Error(`npm run emulator exited with ${code} before listening: ${err}`)));
  });
}

/** True while something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** Whether `pid` still runs (a zombie, exited but not yet reaped by its new parent, does not), from /proc. */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * Waits until none of `pids` (npm's descendants, taken before npm was killed) runs and nothing accepts on `port`,
 * then asserts both. The emulator notices within a poll (250 ms); the 30 s bound is for a loaded machine (two mocha
 * workers side by side), not a timing claim.
 */
async function assertGone(pids: number[], port: number, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (pids.some(running) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(pids.filter(running), [], `processes npm started still running 30 s after ${what}`);
  // With every one of them gone their listening socket is closed; only another program could hold the port.
  while ((await accepts(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await accepts(port), false, `port ${port} still accepts connections after ${what}`);
}

function exitCode(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

describe("emulator persistence and CLI", () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "emu-persist-"))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("saves images to persistPath and loads them again at the next start", async () => {
    const file = path.join(dir, "store.json");
    const first = await startEmulator({ persistPath: file });
    await call(first.baseUrl, "POST", "/accounts/acc-test/images/v1", { form: uploadForm({ id: "keep/1", metadata: '{"h":"abc"}' }, { bytes: pngBytes(1) }) });
    await call(first.baseUrl, "POST", "/accounts/acc-test/images/v1", { form: uploadForm({ id: "keep/2" }, { bytes: pngBytes(2) }) });
    await call(first.baseUrl, "DELETE", "/accounts/acc-test/images/v1/keep%2F2");
    const stored = first.images.get("keep/1");
    await first.close();

    const second = await startEmulator({ persistPath: file });
    try {
      assert.deepEqual([...second.images.keys()], ["keep/1"]);
      assert.deepEqual(second.images.get("keep/1"), stored);
      const got = await call(second.baseUrl, "GET", "/accounts/acc-test/images/v1/keep%2F1");
      assert.deepEqual(got.body.result.meta, { h: "abc" });
    } finally {
      await second.close();
    }
  });

  it("refuses a persist file that is not an emulator store, naming it", async () => {
    const file = path.join(dir, "broken.json");
    fs.writeFileSync(file, "not json");
    await assert.rejects(startEmulator({ persistPath: file }), /persistPath .*broken\.json/);
  });

  it("parses the CLI flags into emulator options", () => {
    assert.deepEqual(parseCli(["--port", "0", "--account", "A", "--token", "T1", "--token", "T2", "--account-hash", "H", "--rate-limit", "1200/300", "--error-rate", "0.1", "--latency", "5-10"]), {
      port: 0,
      accountId: "A",
      tokens: ["T1", "T2"],
      accountHash: "H",
      rateLimit: { requests: 1200, windowSeconds: 300 },
      faults: { errorRate: 0.1, dropRate: undefined, afterWriteRate: undefined, latencyMs: [5, 10] },
    });
  });

  it("takes --rate-limit-mode strict or lenient, with --rate-limit or on its default budget, and refuses anything else", () => {
    assert.deepEqual(parseCli(["--rate-limit", "10/60", "--rate-limit-mode", "lenient"]).rateLimit, { requests: 10, windowSeconds: 60, mode: "lenient" });
    assert.deepEqual(parseCli(["--rate-limit-mode", "strict"]).rateLimit, { requests: 1200, windowSeconds: 300, mode: "strict" });
    const bad = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "test/emulator/cli.ts", "--rate-limit-mode", "soft"], { cwd: ROOT, encoding: "utf8" });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--rate-limit-mode must be strict or lenient \(got "soft"\)/);
  });

  it("prints exactly 'listening on http://127.0.0.1:PORT' first, serves the API, persists, and stops cleanly on SIGTERM", async () => {
    const file = path.join(dir, "cli.json");
    const { child, firstLine, port } = await startCli(["--port", "0", "--account", "ACC", "--token", "TOKEN", "--account-hash", "HASH", "--persist", file]);
    const exited = exitCode(child);
    assert.equal(firstLine, `listening on http://127.0.0.1:${port}`);
    const base = `http://127.0.0.1:${port}/client/v4`;
    const up = await call(base, "POST", "/accounts/ACC/images/v1", { token: "TOKEN", form: uploadForm({ id: "cli/1" }, { bytes: pngBytes(1) }) });
    assert.deepEqual(up.body.result.variants, ["https://imagedelivery.net/HASH/cli/1/public"]);
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    const saved = JSON.parse(fs.readFileSync(file, "utf8"));
    assert.deepEqual(saved.images.map((i: { id: string }) => i.id), ["cli/1"]);
  });

  for (const signal of ["SIGTERM", "SIGINT", "SIGKILL"] as const) {
    it(`exits, leaving no process and no port, when the npm process of \`npm run emulator\` is sent ${signal} (npm's PID only)`, async function () {
      this.timeout(60_000);
      const { npm, port } = await startNpmEmulator(["--port", "0"]);
      let tree: number[] = [];
      try {
        assert.equal(await accepts(port), true);
        tree = descendants(npm.pid!);
        process.kill(npm.pid!, signal);
        await assertGone(tree, port, `${signal} to npm`);
      } finally {
        // Whatever is left (the emulator, had it outlived npm), by PID.
        killGroup(npm, "SIGKILL", tree);
      }
    });
  }

  it("exits too when npm is killed with SIGKILL while the emulator is still starting", async function () {
    // The emulator blocks reading its --persist file, a FIFO, until the test writes it: npm dies in between, so the
    // emulator is reparented before it listens. It must still know npm was its parent (a parent read after start-up
    // is the reaper, and the emulator kept its port for ever: seen once in CI under load).
    this.timeout(60_000);
    const fifo = path.join(dir, `starting-${process.pid}.fifo`);
    const made = spawnSync("mkfifo", [fifo]);
    assert.equal(made.status, 0, String(made.stderr));
    const npm = spawn("npm", ["run", "--silent", "emulator", "--", "--port", "0", "--persist", fifo], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    npm.stdout!.on("data", (d) => (out += d));
    let tree: number[] = [];
    try {
      // Opening a FIFO for writing waits for its reader: the emulator is in loadImages, past its module loading.
      const writer = await fs.promises.open(fifo, "w");
      tree = descendants(npm.pid!);
      const npmGone = exitCode(npm);
      process.kill(npm.pid!, "SIGKILL");
      await npmGone;
      await writer.writeFile('{"images":[]}');
      await writer.close();
      const deadline = Date.now() + 30_000;
      while (!/listening on http:\/\/127\.0\.0\.1:\d+/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      assert.ok(m, `the emulator never listened after npm died; stdout: ${out}`);
      await assertGone(tree, Number(m[1]), "SIGKILL to npm during start-up");
    } finally {
      killGroup(npm, "SIGKILL", tree);
    }
  });

  describe("--help", () => {
    let help: string;
    before(function () {
      this.timeout(60_000);
      const run = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "test/emulator/cli.ts", "--help"], { cwd: ROOT, encoding: "utf8" });
      assert.equal(run.status, 0, run.stderr);
      help = run.stdout;
    });

    it("lists every flag the parser accepts, each with a one-line description and its default", () => {
      const listed = [...help.matchAll(/^ {2}--([a-z-]+)(?: \S+)? +(\S.*) \(default: (.+)\)$/gm)];
      assert.deepEqual(listed.map((m) => m[1]).sort(), Object.keys(FLAGS).sort());
      for (const [, name, description] of listed) assert.ok(description.length >= 10, `--${name} has no description: "${description}"`);
      // And the parser takes exactly these: any other flag is refused (strict parseArgs over the same table).
      const other = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "test/emulator/cli.ts", "--no-such-flag"], { cwd: ROOT, encoding: "utf8" });
      assert.equal(other.status, 2);
      assert.match(other.stderr, /Unknown option '--no-such-flag'/);
    });

    it("states the defaults the emulator really applies without the flags", async () => {
      assert.equal(parseCli([]).port, Number(FLAGS.port.default));
      const emu = await startEmulator({ ...parseCli([]), port: 0 });
      try {
        assert.equal(emu.accountId, FLAGS.account.default);
        assert.equal(emu.accountHash, FLAGS["account-hash"].default);
        const ok = await call(emu.baseUrl, "GET", `/accounts/${emu.accountId}/images/v1/stats`, { token: FLAGS.token.default });
        assert.equal(ok.status, 200);
        const [requests] = FLAGS["rate-limit"].default.split("/").map(Number);
        for (let i = 1; i < requests; i++) await call(emu.baseUrl, "GET", `/accounts/${emu.accountId}/images/v1/stats`, { token: FLAGS.token.default });
        const over = await call(emu.baseUrl, "GET", `/accounts/${emu.accountId}/images/v1/stats`, { token: FLAGS.token.default });
        assert.equal(over.status, 429, `request ${requests + 1} within the window is over the default --rate-limit ${FLAGS["rate-limit"].default}`);
        assert.equal(FLAGS["rate-limit-mode"].default, "strict");
        assert.equal(emu.counters.rateLimitBlocks, 1, "the default mode blocks the token for the window");
      } finally {
        await emu.close();
      }
    });
  });
});
