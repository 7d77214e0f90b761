// The README's "Trying it locally against the emulator", command for command: terminal 1's emulator command and
// every line of terminal 2's block, read from the README and run in a copy of the project with the real CLI.
// What the README says they print is checked against what they print.
import { strict as assert } from "assert";
import { ChildProcess, spawn } from "child_process";
import * as net from "net";
import * as path from "path";
import { describeEngine, REPO_ROOT } from "./cli";
import { CliResult, EngineProject, killGroup } from "./project";
import { readmeBlockAfter, readmeJsonAfter } from "./readme";

const SECTION = "## Trying it locally against the emulator";

async function portFree(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const probe = net.createServer().once("error", () => resolve(false)).once("listening", () => probe.close(() => resolve(true)));
        probe.listen(port, "127.0.0.1");
    });
}

describeEngine("real engine: the README's local walkthrough, command for command", function () {
    this.timeout(400_000);
    let emulator: ChildProcess | undefined;
    let project: EngineProject;
    const outputs: { command: string; result: CliResult }[] = [];

    before(async () => {
        // Terminal 1, exactly as written (the committed Pulumi.local.yaml points at its port).
        const [emulatorCommand] = await readmeBlockAfter(SECTION);
        assert.match(emulatorCommand, /^npm run emulator -- /);
        const port = Number(/--port (\d+)/.exec(emulatorCommand)?.[1]);
        assert.ok(await portFree(port), `port ${port} (the README's emulator port) is in use: stop what listens there`);
        emulator = spawn("bash", ["-c", emulatorCommand], { cwd: REPO_ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
        await new Promise<void>((resolve, reject) => {
            let seen = "";
            emulator!.stdout!.on("data", (d: Buffer) => {
                seen += d.toString();
                if (seen.includes(`listening on http://127.0.0.1:${port}`)) resolve();
            });
            emulator!.once("exit", (code) => reject(new Error(`the emulator exited ${code}: ${seen}`)));
        });
        project = await EngineProject.create({ extraFiles: ["Pulumi.local.yaml", "examples"] });
    });
    after(async () => {
        await project?.close();
        if (emulator) {
            killGroup(emulator, "SIGTERM");
            await new Promise((resolve) => (emulator!.exitCode !== null ? resolve(null) : emulator!.once("exit", resolve)));
        }
    });

    it("runs terminal 2's block line by line: login, exports, stack init, preview, up, output, up, destroy", async () => {
        const lines = (await readmeBlockAfter("Terminal 2")).filter((l) => l !== "");
        assert.ok(lines.length >= 8, lines.join("\n"));
        // Exactly what a user's shell has: no transpile-only shortcut, the README's own exports.
        const env: Record<string, string | undefined> = { PULUMI_NODEJS_TRANSPILE_ONLY: undefined, PULUMI_BACKEND_URL: undefined, PULUMI_CONFIG_PASSPHRASE: undefined };
        for (const line of lines) {
            const exported = /^export (\w+)=(\S+)$/.exec(line);
            if (exported) {
                env[exported[1]] = exported[2];
                continue;
            }
            assert.match(line, /^pulumi /, `a line of the block that is neither export nor pulumi: ${line}`);
            const args = line.slice("pulumi ".length).replace(/\$PWD/g, project.root).split(/\s+/);
            outputs.push({ command: line, result: await project.pulumi(args, { env }) });
        }
    });

    it("preview logs the README's plan line and lists the three images under the README's names", () => {
        const preview = outputs.find((o) => o.command.startsWith("pulumi preview"))!.result.stdout;
        assert.ok(preview.includes("example-images: 3 planned, 1 skipped (not-an-image 1), 1 duplicates"), preview);
        for (const id of ["examples/logo.png", "examples/products/blue-shoe.png", "examples/products/red-shoe.png"]) {
            assert.match(preview, new RegExp(`\\+\\s+pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage img-${id.replace(/\./g, "\\.")} create`));
        }
        assert.doesNotMatch(preview, /warning:/);
    });

    it("the mapping output is the README's JSON", async () => {
        const output = JSON.parse(outputs.find((o) => o.command.startsWith("pulumi stack output"))!.result.stdout);
        assert.deepEqual(output.mapping, await readmeJsonAfter("The `mapping`\noutput then reads"));
    });

    it("the second up changes nothing; destroy deletes the three images", () => {
        const ups = outputs.filter((o) => o.command.startsWith("pulumi up"));
        assert.equal(ups.length, 2);
        assert.match(ups[1].result.stdout, /Resources:\n\s+5 unchanged/);
        const destroy = outputs.find((o) => o.command.startsWith("pulumi destroy"))!.result.stdout;
        assert.match(destroy, /- 5 deleted/);
    });

    it("kept its state in the copy (./.pulumi), not in the user's home", () => {
        assert.ok(path.isAbsolute(project.stateFile("local")));
        const stateLine = outputs.find((o) => o.command.startsWith("pulumi login"))!.result.stdout;
        assert.ok(stateLine.includes(`file://${project.root}`), stateLine);
    });
});
