// Maps a request's method and path to a handler and a counter label (pure matching, no I/O).
import type { IncomingMessage } from "node:http";
import { badRequest, type EmuResponse } from "./envelope";
import { d1Query, type D1Backend } from "./d1-route";
import { deliverImage, DELIVERY_PREFIX } from "./delivery";
import * as images from "./images-routes";
import * as tokens from "./tokens";

/** "delivery": image delivery URLs, which take no token and count against no limit. */
export type Scope = "account" | "batch" | "user" | "delivery";

/** What a route asks of the token (account tokens and user tokens alike). */
export type Permission = "images:read" | "images:write" | "tokens:read";

export interface HandlerEnv {
  images: images.ImagesContext;
  d1?: D1Backend;
  req: IncomingMessage;
  query: URLSearchParams;
  /** The token of an admitted account or user request. */
  grant?: tokens.TokenGrant;
}

export interface RouteMatch {
  /** e.g. "POST images/v1", "GET images/v1/{id}", "batch GET images/v2", "POST d1/query". */
  label: string;
  scope: Scope;
  /** The account in the path (account scope only). */
  accountId?: string;
  /** true when the route changes state (after-write faults apply). */
  write: boolean;
  /** The permission the token needs; none for token verification. */
  needs?: Permission;
  /** Token routes answer about the token itself (`/user/tokens/verify`, `/accounts/{acc}/tokens/verify`). */
  tokenOwner?: "user" | "account";
  handle(env: HandlerEnv): Promise<EmuResponse> | EmuResponse;
}

function decodeId(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(`Image ID "${segment}" is not validly URL-encoded`);
  }
}

type Handler = Omit<RouteMatch, "label" | "scope" | "accountId"> & { name: string; batch: boolean };

/** Images routes need Images Read to look and Images Write to change anything (the batch token too). */
function imagesPermission(handler: Handler): Handler {
  return { ...handler, needs: handler.write || handler.name === "images/v1/batch_token" ? "images:write" : "images:read" };
}

/** The route below `/accounts/{acc}` or below the batch host's root. */
function matchRest(method: string, rest: string[]): Handler | undefined {
  const handler = matchRestRoute(method, rest);
  return handler && handler.name.startsWith("images/") ? imagesPermission(handler) : handler;
}

function matchRestRoute(method: string, rest: string[]): Handler | undefined {
  const [a, b, c, d] = rest;
  if (a === "tokens" && rest.length === 2 && method === "GET") {
    if (b === "verify") return { name: "tokens/verify", batch: false, write: false, tokenOwner: "account", handle: (env) => tokens.verifyAnswer(env.grant!) };
    if (b === "permission_groups") return { name: "tokens/permission_groups", batch: false, write: false, needs: "tokens:read", handle: () => tokens.permissionGroupsAnswer() };
  }
  if (a === "images" && b === "v1") {
    if (rest.length === 2) {
      if (method === "POST") return { name: "images/v1", batch: true, write: true, handle: (env) => images.uploadImage(env.images, env.req) };
      if (method === "GET") return { name: "images/v1", batch: false, write: false, handle: (env) => images.listV1(env.images, env.query) };
      return undefined;
    }
    if (rest.length === 3 && c === "stats" && method === "GET") return { name: "images/v1/stats", batch: false, write: false, handle: (env) => images.stats(env.images) };
    if (rest.length === 3 && c === "batch_token" && method === "GET") {
      return { name: "images/v1/batch_token", batch: false, write: false, handle: (env) => images.batchToken(env.images) };
    }
    if (rest.length === 3 && c !== "") {
      if (method === "GET") return { name: "images/v1/{id}", batch: true, write: false, handle: (env) => images.getImage(env.images, decodeId(c)) };
      if (method === "PATCH") return { name: "images/v1/{id}", batch: true, write: true, handle: (env) => images.patchImage(env.images, decodeId(c), env.req) };
      if (method === "DELETE") return { name: "images/v1/{id}", batch: true, write: true, handle: (env) => images.deleteImage(env.images, decodeId(c)) };
      return undefined;
    }
    if (rest.length === 4 && c !== "" && d === "blob" && method === "GET") {
      return { name: "images/v1/{id}/blob", batch: false, write: false, handle: (env) => images.getBlob(env.images, decodeId(c)) };
    }
    return undefined;
  }
  if (a === "images" && b === "v2" && rest.length === 2 && method === "GET") {
    return { name: "images/v2", batch: true, write: false, handle: (env) => images.listV2(env.images, env.query) };
  }
  if (a === "d1" && b === "database" && c && (d === "query" || d === "raw") && rest.length === 4 && method === "POST") {
    return { name: `d1/${d}`, batch: false, write: true, handle: (env) => d1Query(env.d1, decodeId(c), d === "raw", env.req) };
  }
  return undefined;
}

export function matchRoute(method: string, pathname: string): RouteMatch | undefined {
  const parts = pathname.split("/");
  if (parts[1] === "client" && parts[2] === "v4" && parts[3] === "accounts" && parts[4]) {
    const handler = matchRest(method, parts.slice(5));
    if (!handler) return undefined;
    const { name, batch: _batch, ...rest } = handler;
    return { ...rest, label: `${method} ${name}`, scope: "account", accountId: decodeId(parts[4]) };
  }
  if (parts[1] === "client" && parts[2] === "v4" && parts[3] === "user" && parts[4] === "tokens" && parts.length === 6 && method === "GET") {
    if (parts[5] === "verify") {
      return { label: "GET user/tokens/verify", scope: "user", write: false, tokenOwner: "user", handle: (env) => tokens.verifyAnswer(env.grant!) };
    }
    if (parts[5] === "permission_groups") {
      return { label: "GET user/tokens/permission_groups", scope: "user", write: false, needs: "tokens:read", handle: () => tokens.permissionGroupsAnswer() };
    }
  }
  if (pathname.startsWith(`${DELIVERY_PREFIX}/`) && (method === "GET" || method === "HEAD")) {
    return { label: `${method} delivery`, scope: "delivery", write: false, handle: (env) => deliverImage(env.images, env.req.url ?? "") };
  }
  if (parts[1] === "batch") {
    const handler = matchRest(method, parts.slice(2));
    if (!handler || !handler.batch) return undefined;
    const { name, batch: _batch, ...rest } = handler;
    return { ...rest, label: `batch ${method} ${name}`, scope: "batch" };
  }
  return undefined;
}
