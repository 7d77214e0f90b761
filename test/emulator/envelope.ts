// The Cloudflare v4 response envelope and the emulator's one response type.

export interface ApiErrorItem {
  code: number;
  message: string;
}

/** What a route handler answers; written to the socket in one place (server.ts) so faults can replace it. */
export interface EmuResponse {
  status: number;
  headers?: Record<string, string>;
  body: Buffer | string;
}

/** A Cloudflare-style failure: thrown by handlers, turned into an envelope by the server. */
export class CfError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const codes = {
  noRoute: 7003,
  auth: 10000,
  invalidToken: 1000,
  unauthorized: 9109,
  rateLimited: 971,
  internal: 10001,
  badRequest: 5400,
  notFound: 5404,
  exists: 5409,
  unsupportedFormat: 5415,
  d1Error: 7500,
} as const;

export const messages = {
  noRoute: "No route for the URI",
  auth: "Authentication error",
  invalidToken: "Invalid API Token",
  unauthorized: "Unauthorized to access requested resource",
  rateLimited: "Please wait and consider throttling your request speed",
  notFound: "Image not found",
  exists: "Resource already exists. Verify the resource information and try again.",
  internal: "Internal server error",
} as const;

export function json(status: number, body: unknown, headers: Record<string, string> = {}): EmuResponse {
  return { status, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

export function ok(result: unknown, extra: Record<string, unknown> = {}): EmuResponse {
  return json(200, { success: true, errors: [], messages: [], result, ...extra });
}

export function failure(status: number, errors: ApiErrorItem[], headers: Record<string, string> = {}): EmuResponse {
  return json(status, { success: false, errors, messages: [], result: null }, headers);
}

export function fromError(err: unknown): EmuResponse {
  if (err instanceof CfError) return failure(err.status, [{ code: err.code, message: err.message }], err.headers);
  return failure(500, [{ code: codes.internal, message: `${messages.internal}: ${(err as Error)?.message ?? String(err)}` }]);
}

export const noRoute = (): CfError => new CfError(404, codes.noRoute, messages.noRoute);
export const badRequest = (message: string): CfError => new CfError(400, codes.badRequest, message);
export const imageNotFound = (): CfError => new CfError(404, codes.notFound, messages.notFound);
