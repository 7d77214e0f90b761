import * as http from "http";
import { AddressInfo } from "net";

/** One request as the controlled server saw it. */
export interface SeenRequest {
    at: number; // performance.now() when the headers arrived
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    body: Buffer;
}

export type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

/**
 * A loopback HTTP server for exact client behaviours: each request takes the next scripted behaviour (the last one
 * repeats), and every request is recorded with its server-side arrival time.
 */
export interface LoopbackServer {
    baseUrl: string; // http://127.0.0.1:PORT/client/v4
    origin: string;
    seen: SeenRequest[];
    script(...behaviours: Behaviour[]): void;
    route(fn: (req: SeenRequest) => Behaviour | undefined): void;
    close(): Promise<void>;
}

export function envelope(result: unknown): string {
    return JSON.stringify({ success: true, errors: [], messages: [], result });
}

export function failure(code: number, message: string): string {
    return JSON.stringify({ success: false, errors: [{ code, message }], messages: [], result: null });
}

export const ok = (result: unknown): Behaviour => (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(envelope(result));
};

export const fail = (status: number, code: number, message: string, headers: Record<string, string> = {}): Behaviour =>
    (_req, res) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(failure(code, message));
    };

export const drop: Behaviour = (req) => req.socket.destroy();
export const hang: Behaviour = () => undefined;

export async function startLoopback(): Promise<LoopbackServer> {
    let queue: Behaviour[] = [ok({})];
    let router: ((req: SeenRequest) => Behaviour | undefined) | undefined;
    const seen: SeenRequest[] = [];
    const sockets = new Set<import("net").Socket>();
    const server = http.createServer((req, res) => {
        const at = performance.now();
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("error", () => undefined);
        req.on("end", () => {
            const entry: SeenRequest = { at, method: req.method ?? "", url: req.url ?? "", headers: req.headers,
                body: Buffer.concat(chunks) };
            seen.push(entry);
            const routed = router?.(entry);
            const behaviour = routed ?? (queue.length > 1 ? queue.shift()! : queue[0]);
            behaviour(req, res, entry.body);
        });
    });
    server.on("connection", (s) => {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
        origin,
        baseUrl: `${origin}/client/v4`,
        seen,
        script: (...behaviours) => {
            queue = behaviours.length ? behaviours : [ok({})];
            seen.length = 0;
        },
        route: (fn) => {
            router = fn;
        },
        close: async () => {
            for (const s of sockets) s.destroy();
            await new Promise<void>((resolve) => server.close(() => resolve()));
        },
    };
}
