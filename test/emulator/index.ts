// The local Cloudflare Images API emulator: a real HTTP server on 127.0.0.1 (see README.md in this folder).
import * as http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { once } from "node:events";
import { CfError, codes, failure, fromError, messages, noRoute, type EmuResponse } from "./envelope";
import type { D1Backend } from "./d1-route";
import { afterWriteFault, beforeFault, delayMs, faultApplies, seededRandom, validateFaults, type FaultAction, type Faults, type Random } from "./faults";
import { loadImages, StoreSaver, UploadClock, type StoredImage } from "./image-store";
import { CursorStore, type ImagesContext } from "./images-routes";
import { TokenRateLimiter, type RateBlock, type RateBudget } from "./rate-limiter";
import { matchRoute, type RouteMatch } from "./routes";
import { allows, grantFor, type TokenGrant, type TokenGrantOptions } from "./tokens";

export type { D1Backend, D1Statement, D1Result } from "./d1-route";
export type { Faults } from "./faults";
export type { StoredImage } from "./image-store";
export type { RateBlock, RateBudget, RateLimitMode } from "./rate-limiter";
export { blockedMs } from "./rate-limiter";
export type { TokenGrantOptions } from "./tokens";

export interface EmulatorOptions {
  /** 0 (default) = random free port on 127.0.0.1. */
  port?: number;
  /** Default "acc-test"; other accounts answer 403 / 9109. */
  accountId?: string;
  /** Accepted bearer tokens; default ["test-token"]. */
  tokens?: string[];
  /** What each token may do (owner, status, Images access, API Tokens); a token not listed may do everything. */
  tokenGrants?: Record<string, TokenGrantOptions>;
  /** Default "hash-test"; variants = https://imagedelivery.net/<hash>/<id>/<variant>. */
  accountHash?: string;
  /** Default ["public"]. */
  variants?: string[];
  /**
   * Per token; default 1200 / 300 s, mode "strict": the request over the budget blocks the token for the window
   * (every request 429 until it ends), then the count starts afresh. "lenient": a sliding window, no block.
   */
  rateLimit?: RateBudget;
  /** The clock (ms) of the account rate limit; default Date.now. Tests pass their own to cross a block at once. */
  rateLimitClock?: () => number;
  /** Batch host limit per batch token (sliding 1 s window); default 200/s, tokens live tokenTtlSeconds (default 3600). */
  batch?: { requestsPerSecond: number; tokenTtlSeconds?: number };
  /** Default none. */
  faults?: Faults;
  /** JSON file to load images from at start and save them to (debounced, atomic) after every change. */
  persistPath?: string;
  /** Executes D1 HTTP API queries; without it the D1 routes answer 404 / 7003. */
  d1?: D1Backend;
  /** Timeout of the origin fetch of url uploads; default 10,000 ms. */
  fetchTimeoutMs?: number;
  /** Reported as stats.count.allowed; default 100,000. */
  allowedImages?: number;
  /** Seed of the fault-injection random numbers (default: Math.random). faults.seed reseeds on setFaults. */
  seed?: number;
}

export interface EmulatorCounters {
  requests: number;
  /** e.g. "POST images/v1 200", "batch GET images/v2 429", "POST images/v1 dropped", "unmatched 404". */
  byRoute: Record<string, number>;
  /** Successful creates (including those answered with an after-write fault). */
  uploads: number;
  deletes: number;
  patches: number;
  http429: number;
  /** Strict blocks started on the API host (each holds its token for a whole window). */
  rateLimitBlocks: number;
  /** Every injected fault: 5xx answers and dropped connections, before or after the write. */
  faultsInjected: number;
  /** Connections destroyed without an answer (a subset of faultsInjected). */
  dropped: number;
  /** Writes that took effect and were then answered with a fault (a subset of faultsInjected). */
  afterWriteFaults: number;
  /** Peak per-token requests (accepted or not) seen in any rate window. */
  maxRequestsInWindow: number;
  /** The same peak on the batch host: requests one batch token sent within one second. */
  maxBatchRequestsInSecond: number;
}

export interface Emulator {
  /** "http://127.0.0.1:PORT/client/v4" (use as apiBaseUrl). */
  baseUrl: string;
  /** "http://127.0.0.1:PORT/batch": requests go to `${batchBaseUrl}/images/v1...`. */
  batchBaseUrl: string;
  /** "http://127.0.0.1:PORT/cdn-cgi/imagedelivery": images are served at `${deliveryBaseUrl}/<hash>/<id>/<variant>`. */
  deliveryBaseUrl: string;
  port: number;
  accountId: string;
  accountHash: string;
  /** Live store: tests may read, insert and delete out of band. */
  images: Map<string, StoredImage>;
  counters: EmulatorCounters;
  /** Live batch tokens and their expiry (ms since epoch); tests may expire them. */
  batchTokens: Map<string, number>;
  setFaults(f: Faults | undefined): void;
  /** A new budget; every token starts afresh, a block under way ends. */
  setRateLimit(r: RateBudget): void;
  /** Strict blocks on the API host since start or resetCounters, oldest first, on the rateLimitClock (ms). */
  rateLimitBlocks: readonly RateBlock[];
  /** Accepts `t` from now on, with what `grant` allows (default everything). */
  addToken(t: string, grant?: TokenGrantOptions): void;
  /** Reported as stats.count.allowed. */
  setAllowedImages(n: number): void;
  revokeToken(t: string): void;
  resetCounters(): void;
  /** Writes the persist file now (no-op without persistPath). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

function newCounters(): EmulatorCounters {
  return { requests: 0, byRoute: {}, uploads: 0, deletes: 0, patches: 0, http429: 0, rateLimitBlocks: 0, faultsInjected: 0, dropped: 0, afterWriteFaults: 0, maxRequestsInWindow: 0, maxBatchRequestsInSecond: 0 };
}

function validateBudget(r: RateBudget, key: string): RateBudget {
  if (!(Number.isInteger(r.requests) && r.requests >= 1 && r.windowSeconds > 0)) {
    throw new Error(`${key} must have requests >= 1 (integer) and windowSeconds > 0 (got ${JSON.stringify(r)})`);
  }
  if (r.mode !== undefined && r.mode !== "strict" && r.mode !== "lenient") {
    throw new Error(`${key}.mode must be "strict" or "lenient" (got ${JSON.stringify(r.mode)})`);
  }
  return r;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function bearer(req: http.IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  return m?.[1];
}

function faultResponse(status: 500 | 502 | 524): EmuResponse {
  if (status === 524) {
    return { status, headers: { "content-type": "text/html" }, body: "<html><head><title>524: A timeout occurred</title></head><body>Error code 524</body></html>" };
  }
  return failure(status, [{ code: codes.internal, message: status === 502 ? "Bad gateway" : messages.internal }]);
}

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const accountId = opts.accountId ?? "acc-test";
  const accountHash = opts.accountHash ?? "hash-test";
  const tokens = new Set(opts.tokens ?? ["test-token"]);
  const grants = new Map<string, TokenGrant>();
  const grantOf = (token: string): TokenGrant => {
    let grant = grants.get(token);
    if (!grant) grants.set(token, (grant = grantFor(opts.tokenGrants?.[token])));
    return grant;
  };
  const limiter = new TokenRateLimiter(validateBudget(opts.rateLimit ?? { requests: 1200, windowSeconds: 300 }, "rateLimit"));
  const rateLimitClock = opts.rateLimitClock ?? Date.now;
  const batchRps = opts.batch?.requestsPerSecond ?? 200;
  // Cloudflare documents no block on the batch host: over 200/s a request is refused, nothing more.
  const batchLimiter = new TokenRateLimiter(validateBudget({ requests: batchRps, windowSeconds: 1, mode: "lenient" }, "batch.requestsPerSecond"));
  let faults: Faults | undefined;
  let random: Random = opts.seed !== undefined ? seededRandom(opts.seed) : Math.random;
  const counters = newCounters();
  const images = opts.persistPath ? loadImages(opts.persistPath) : new Map<string, StoredImage>();
  const saver = opts.persistPath ? new StoreSaver(opts.persistPath, images) : undefined;

  const setFaults = (f: Faults | undefined) => {
    if (f) validateFaults(f);
    faults = f;
    if (f?.seed !== undefined) random = seededRandom(f.seed);
  };
  setFaults(opts.faults);

  const ctx: ImagesContext = {
    images,
    accountHash,
    variants: opts.variants ?? ["public"],
    fetchTimeoutMs: opts.fetchTimeoutMs ?? 10_000,
    allowedImages: opts.allowedImages ?? 100_000,
    batchTokenTtlSeconds: opts.batch?.tokenTtlSeconds ?? 3600,
    clock: new UploadClock(),
    cursors: new CursorStore(),
    batchTokens: new Map(),
    written(kind) {
      if (kind === "upload") counters.uploads++;
      else if (kind === "patch") counters.patches++;
      else counters.deletes++;
      saver?.changed();
    },
  };

  const count = (key: string) => {
    counters.byRoute[key] = (counters.byRoute[key] ?? 0) + 1;
  };

  /** Auth, account, permission and rate limit for a matched route; throws the Cloudflare error. */
  const admit = (route: RouteMatch, req: http.IncomingMessage): TokenGrant | undefined => {
    if (route.scope === "delivery") return;
    const token = bearer(req);
    if (route.scope === "batch") {
      const expiresAt = token ? ctx.batchTokens.get(token) : undefined;
      if (expiresAt === undefined) throw new CfError(401, codes.auth, `${messages.auth}: a valid batch token is required`);
      if (expiresAt <= Date.now()) throw new CfError(401, codes.auth, `${messages.auth}: the batch token has expired`);
      rateLimit(batchLimiter, token as string, Date.now());
      return;
    }
    const grant = token && tokens.has(token) ? grantOf(token) : undefined;
    if (route.tokenOwner !== undefined) {
      // Cloudflare verifies user tokens and account-owned tokens at different paths, and calls the other kind invalid.
      if (!grant || grant.owner !== route.tokenOwner) throw new CfError(401, codes.invalidToken, messages.invalidToken);
      if (route.scope === "account" && route.accountId !== accountId) throw new CfError(403, codes.unauthorized, messages.unauthorized);
      rateLimit(limiter, token!, rateLimitClock());
      return grant;
    }
    if (!token || !grant || grant.status !== "active") throw new CfError(401, codes.auth, messages.auth);
    if (route.scope === "account" && route.accountId !== accountId) throw new CfError(403, codes.unauthorized, messages.unauthorized);
    if (!allows(grant, route.needs)) throw new CfError(403, codes.unauthorized, messages.unauthorized);
    rateLimit(limiter, token, rateLimitClock());
    return grant;
  };

  const rateLimit = (l: TokenRateLimiter, key: string, now: number) => {
    const decision = l.take(key, now);
    counters.maxRequestsInWindow = limiter.maxRequestsInWindow;
    counters.maxBatchRequestsInSecond = batchLimiter.maxRequestsInWindow;
    counters.rateLimitBlocks = limiter.blocks.length;
    if (!decision.allowed) {
      counters.http429++;
      throw new CfError(429, codes.rateLimited, messages.rateLimited, { "retry-after": String(decision.retryAfterSeconds) });
    }
  };

  const drop = (req: http.IncomingMessage, label: string) => {
    counters.faultsInjected++;
    counters.dropped++;
    count(`${label} dropped`);
    req.socket.destroy();
  };

  const send = async (req: http.IncomingMessage, res: http.ServerResponse, label: string, out: EmuResponse) => {
    // Answer only once the request body is consumed, so clients read the answer instead of a reset mid-upload.
    if (!req.complete && !req.destroyed) {
      req.resume();
      await Promise.race([once(req, "end"), once(req, "close")]).catch(() => undefined);
    }
    count(`${label} ${out.status}`);
    res.writeHead(out.status, out.headers ?? {});
    res.end(out.body);
  };

  const inject = async (req: http.IncomingMessage, res: http.ServerResponse, label: string, action: FaultAction): Promise<boolean> => {
    if (action.kind === "none") return false;
    if (action.kind === "drop") drop(req, label);
    else {
      counters.faultsInjected++;
      await send(req, res, label, faultResponse(action.status));
    }
    return true;
  };

  const serve = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    counters.requests++;
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    let route: RouteMatch | undefined;
    try {
      route = matchRoute(method, url.pathname);
    } catch (err) {
      await send(req, res, "unmatched", fromError(err));
      return;
    }
    const label = route?.label ?? "unmatched";
    // Cloudflare counts a request against the rate limit when it arrives; added latency models the work after that.
    let refused: unknown;
    let grant: TokenGrant | undefined;
    try {
      if (!route) throw noRoute();
      grant = admit(route, req);
    } catch (err) {
      refused = err;
    }
    // Faults model the API; delivery is another service (imagedelivery.net) and stays up.
    const active = faults && route?.scope !== "delivery" && faultApplies(faults, method) ? faults : undefined;
    if (active) {
      const wait = delayMs(active, random);
      if (wait > 0) await sleep(wait);
      if (await inject(req, res, label, beforeFault(active, random))) return;
    }
    let out: EmuResponse;
    try {
      if (refused !== undefined) throw refused;
      out = await route!.handle({ images: ctx, d1: opts.d1, req, query: url.searchParams, grant });
    } catch (err) {
      out = fromError(err);
    }
    if (active && route?.write && out.status < 300) {
      const after = afterWriteFault(active, random);
      if (after.kind !== "none") counters.afterWriteFaults++;
      if (await inject(req, res, label, after)) return;
    }
    await send(req, res, label, out);
  };

  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    serve(req, res).catch((err) => {
      if (res.headersSent) return;
      const out = fromError(err);
      res.writeHead(out.status, out.headers);
      res.end(out.body);
    });
  });
  // Longer than Node clients' 5 s idle keep-alive, so an idle socket is never closed under a client's new request.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.listen(opts.port ?? 0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://127.0.0.1:${port}/client/v4`,
    batchBaseUrl: `http://127.0.0.1:${port}/batch`,
    deliveryBaseUrl: `http://127.0.0.1:${port}/cdn-cgi/imagedelivery`,
    port,
    accountId,
    accountHash,
    images,
    counters,
    batchTokens: ctx.batchTokens,
    rateLimitBlocks: limiter.blocks,
    setFaults,
    setRateLimit(r) {
      limiter.setBudget(validateBudget(r, "rateLimit"));
    },
    addToken: (t, grant) => {
      tokens.add(t);
      grants.set(t, grantFor(grant ?? opts.tokenGrants?.[t]));
    },
    setAllowedImages(n) {
      ctx.allowedImages = n;
    },
    revokeToken: (t) => void tokens.delete(t),
    resetCounters() {
      Object.assign(counters, newCounters());
      limiter.resetStats();
      batchLimiter.resetStats();
    },
    flush: async () => saver?.flush(),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      await saver?.flush();
    },
  };
}
