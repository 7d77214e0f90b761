// The README's commands, read from the README itself, so the tests run what users are told to run.
import { promises as fs } from "fs";
import * as path from "path";
import { REPO_ROOT } from "./cli";

async function readme(): Promise<string> {
    return fs.readFile(path.join(REPO_ROOT, "README.md"), "utf8");
}

/** The `pulumi` commands (arguments after `pulumi`) in the README's paragraph on an interrupted run. */
export async function readmeRecoveryCommands(): Promise<string[][]> {
    const text = await readme();
    const paragraph = text.split(/\n\s*\n/).find((p) => p.startsWith("If a run was interrupted"));
    if (!paragraph) throw new Error("README.md: no paragraph starting 'If a run was interrupted'");
    const commands = [...paragraph.matchAll(/`pulumi ([^`]+)`/g)].map((m) => m[1].trim().split(/\s+/));
    if (commands.length === 0) throw new Error("README.md: the interrupted-run paragraph names no pulumi command");
    return commands;
}

/** The lines of the fenced sh block that follows `marker` in the README, comments stripped. */
export async function readmeBlockAfter(marker: string): Promise<string[]> {
    const text = await readme();
    const at = text.indexOf(marker);
    if (at < 0) throw new Error(`README.md: no "${marker}"`);
    const block = /```sh\n([\s\S]*?)```/.exec(text.slice(at));
    if (!block) throw new Error(`README.md: no sh block after "${marker}"`);
    return block[1].split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

/** The first fenced json block after `marker`. */
export async function readmeJsonAfter(marker: string): Promise<unknown> {
    const text = await readme();
    const at = text.indexOf(marker);
    if (at < 0) throw new Error(`README.md: no "${marker}"`);
    const block = /```json\n([\s\S]*?)```/.exec(text.slice(at));
    if (!block) throw new Error(`README.md: no json block after "${marker}"`);
    return JSON.parse(block[1]);
}
