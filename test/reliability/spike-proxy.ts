// A loopback HTTP proxy in front of the emulator that holds a share of write requests longer than the client's
// timeout and then forwards them anyway: the client gives up and retries while the first attempt still takes
// effect, as when Cloudflare is slow but not down. It counts what it did, so the tests report real numbers.
import * as http from "node:http";
import { once } from "node:events";
import type { AddressInfo, Socket } from "node:net";

export interface SpikeProxyOptions {
    /** Share of write requests (POST/PATCH/PUT/DELETE) held back. */
    rate: number;
    /** How long a held request waits before it is forwarded. */
    delayMs: number;
    random: () => number;
}

export interface SpikeProxy {
    /** "http://127.0.0.1:PORT": the same paths as the target. */
    origin: string;
    /** Requests held back. */
    spikes: number;
    /** Held requests whose client had given up (timed out) before the target answered. */
    abandoned: number;
    /** Held requests whose client had given up by the time the target answered them with success: writes applied unseen. */
    appliedAfterClientLeft: number;
    close(): Promise<void>;
}

const isWrite = (method: string | undefined): boolean => ["POST", "PATCH", "PUT", "DELETE"].includes(method ?? "");

export async function startSpikeProxy(target: string, opts: SpikeProxyOptions): Promise<SpikeProxy> {
    const upstream = new URL(target);
    const sockets = new Set<Socket>();
    const agent = new http.Agent({ keepAlive: true });
    const proxy: SpikeProxy = {
        origin: "",
        spikes: 0,
        abandoned: 0,
        appliedAfterClientLeft: 0,
        close: async () => {
            const closed = new Promise<void>((resolve) => server.close(() => resolve()));
            for (const s of sockets) s.destroy();
            agent.destroy();
            await closed;
        },
    };

    const server = http.createServer((req, res) => {
        let clientGone = false;
        res.on("close", () => {
            if (!res.writableFinished) clientGone = true;
        });
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("error", () => undefined);
        req.on("end", () => {
            const spike = isWrite(req.method) && opts.random() < opts.rate;
            if (spike) proxy.spikes++;
            setTimeout(() => forward(Buffer.concat(chunks)), spike ? opts.delayMs : 0);
        });

        const forward = (body: Buffer) => {
            const headers = { ...req.headers, host: upstream.host, "content-length": String(body.length) };
            delete headers["transfer-encoding"];
            const out = http.request({
                host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers, agent,
            }, (answer) => {
                if (clientGone) {
                    proxy.abandoned++;
                    if ((answer.statusCode ?? 500) < 300) proxy.appliedAfterClientLeft++;
                    answer.resume();
                    return;
                }
                res.writeHead(answer.statusCode ?? 502, answer.headers);
                answer.pipe(res);
            });
            // The target dropped the connection (an injected fault): the client sees a drop too.
            out.on("error", () => req.socket.destroy());
            out.end(body);
        };
    });
    server.on("connection", (s) => {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    proxy.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return proxy;
}
