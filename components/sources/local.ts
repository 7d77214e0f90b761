import { createHash } from "crypto";
import { createReadStream, Dirent, promises as fs } from "fs";
import * as path from "path";
import { extensionOf, skipReason } from "../image-plan";
import { LocalSource } from "./schema";
import { sniffImageType, SNIFF_BYTES } from "../../provider/image-format";
import { ImageSource, SourceContext, SourceImage, sourceError } from "./types";

/** Files hashed at once: enough to keep a disk busy, few enough to keep memory flat. */
const CONCURRENCY = 8;

/**
 * A folder walked recursively. Each file is stat'ed and sniffed; files that will be migrated are hashed (sha256,
 * streamed). The key is the path relative to the folder with `/` separators; the old URL is that path with a leading `/`.
 */
export function localSource(source: LocalSource, context: SourceContext): ImageSource {
    const root = path.resolve(source.dir);
    const fail = (message: string) => sourceError(context.configPath, "dir", message);
    return {
        async *list() {
            const pending: Promise<SourceImage | undefined>[] = [];
            for await (const file of walk(root, root, fail)) {
                const described = describeFile(root, file, fail);
                described.catch(() => undefined); // awaited in order below; this only stops an early "unhandled" report
                pending.push(described);
                if (pending.length >= CONCURRENCY) {
                    const image = await pending.shift()!;
                    if (image) yield image;
                }
            }
            while (pending.length > 0) {
                const image = await pending.shift()!;
                if (image) yield image;
            }
        },
    };
}

async function* walk(root: string, dir: string, fail: (message: string) => Error): AsyncGenerator<string> {
    let entries: AsyncIterable<Dirent>;
    try {
        entries = await fs.opendir(dir);
    } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? "error";
        throw dir === root
            ? fail(`cannot read folder "${root}" (${code}); set it to an existing, readable folder (relative to the Pulumi project directory)`)
            : fail(`cannot read folder "${relative(root, dir)}" inside "${root}" (${code}); fix its permissions or exclude it`);
    }
    for await (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
            yield* walk(root, full, fail);
        } else if (entry.isFile()) {
            yield full;
        } else if (entry.isSymbolicLink()) {
            // Linked files are migrated; linked folders are not followed (they can loop).
            const target = await fs.stat(full).catch(() => undefined);
            if (target?.isFile()) yield full;
        }
    }
}

async function describeFile(root: string, file: string, fail: (message: string) => Error): Promise<SourceImage | undefined> {
    const key = relative(root, file);
    try {
        const { size } = await fs.stat(file);
        const contentType = await sniff(file, size, key);
        const image: SourceImage = { key, filePath: file, size, contentType, oldUrls: [`/${key}`] };
        // Hash only what will be migrated: a folder of videos or a .git directory costs one small read per file.
        if (skipReason(image) === undefined) image.contentHash = await sha256(file);
        return image;
    } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return undefined; // removed while walking
        throw fail(`cannot read "${key}" inside "${root}" (${code ?? (error as Error).message}); fix its permissions or exclude it`);
    }
}

async function sniff(file: string, size: number, key: string): Promise<string | undefined> {
    if (size === 0) return undefined;
    // An SVG root element may sit past the sniffed bytes (long comments): there the extension decides.
    const textual = extensionOf(key) === "svg";
    const handle = await fs.open(file, "r");
    try {
        const head = Buffer.alloc(Math.min(SNIFF_BYTES, size));
        const { bytesRead } = await handle.read(head, 0, head.length, 0);
        // Bytes that match no image signature are not an image, whatever the file is called.
        return sniffImageType(head.subarray(0, bytesRead)) ?? (textual ? undefined : "application/x-unknown");
    } finally {
        await handle.close();
    }
}

async function sha256(file: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    return hash.digest("hex");
}

function relative(root: string, file: string): string {
    return path.relative(root, file).split(path.sep).join("/");
}
