// The old origin of a local trial: a static file server over one folder on 127.0.0.1 (GET and HEAD, nothing else).
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo, Socket } from "net";
import * as path from "path";

const CONTENT_TYPES: Record<string, string> = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
    ".svg": "image/svg+xml", ".avif": "image/avif", ".heic": "image/heic", ".ico": "image/x-icon",
    ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8", ".json": "application/json", ".txt": "text/plain; charset=utf-8",
};

export interface StaticOrigin {
    /** "http://127.0.0.1:PORT" */
    url: string;
    port: number;
    /** Request paths as they arrived (method and target), oldest first: which requests reached the old site. */
    requests: { method: string; path: string }[];
    close(): Promise<void>;
}

/** The file under `root` that `target` (a request target) names, or undefined when it names none or leaves `root`. */
export function fileFor(root: string, target: string): string | undefined {
    let pathname: string;
    try {
        pathname = decodeURIComponent(new URL(target, "http://origin.invalid").pathname);
    } catch {
        return undefined;
    }
    if (pathname.includes("\0")) return undefined;
    const file = path.resolve(root, `.${pathname}`);
    if (file !== root && !file.startsWith(`${root}${path.sep}`)) return undefined;
    return file;
}

function answer(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers });
    res.end(`${text}\n`);
}

/** Serves `dir` (index.html for a folder); listens on `port` (0: a free one). Rejects with the listen error. */
export async function startStaticOrigin(dir: string, port = 0): Promise<StaticOrigin> {
    const root = path.resolve(dir);
    if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
        throw new Error(`originDir ${root}: not a folder (the old site's files are served from it)`);
    }
    const requests: StaticOrigin["requests"] = [];
    const server = http.createServer((req, res) => {
        const method = req.method ?? "GET";
        requests.push({ method, path: req.url ?? "/" });
        if (method !== "GET" && method !== "HEAD") return answer(res, 405, "Method Not Allowed", { allow: "GET, HEAD" });
        let file = fileFor(root, req.url ?? "/");
        let stat = file ? fs.statSync(file, { throwIfNoEntry: false }) : undefined;
        if (file && stat?.isDirectory()) {
            file = path.join(file, "index.html");
            stat = fs.statSync(file, { throwIfNoEntry: false });
        }
        if (!file || !stat?.isFile()) return answer(res, 404, "Not Found");
        res.writeHead(200, {
            "content-type": CONTENT_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream",
            "content-length": String(stat.size),
            "cache-control": "no-cache",
        });
        if (method === "HEAD") return void res.end();
        fs.createReadStream(file).on("error", () => res.destroy()).pipe(res);
    });
    const sockets = new Set<Socket>();
    server.on("connection", (s) => {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => {
            server.off("error", reject);
            resolve();
        });
    });
    const actual = (server.address() as AddressInfo).port;
    return {
        url: `http://127.0.0.1:${actual}`,
        port: actual,
        requests,
        close: () => new Promise<void>((resolve) => {
            server.close(() => resolve());
            for (const s of sockets) s.destroy();
        }),
    };
}
