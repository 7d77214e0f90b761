// API tokens as the emulator knows them: who owns each, what it may do, and the token routes' answers (pure).
import { randomBytes } from "node:crypto";
import { ok, type EmuResponse } from "./envelope";

/** What a token may do. Unlisted tokens get everything (a user token with Images Write and API Tokens Write). */
export interface TokenGrant {
  /** Stable token ID as `tokens/verify` reports it. */
  id: string;
  /** User tokens verify at /user/tokens/verify, account-owned tokens at /accounts/{acc}/tokens/verify. */
  owner: "user" | "account";
  /** "disabled" and "expired" tokens are refused everywhere but `verify`, which reports the status. */
  status: "active" | "disabled" | "expired";
  images: "write" | "read" | "none";
  /** May list permission groups and create tokens (API Tokens Write). */
  apiTokens: boolean;
}

export type TokenGrantOptions = Partial<Omit<TokenGrant, "id">>;

export function grantFor(options: TokenGrantOptions | undefined): TokenGrant {
  return {
    id: randomBytes(16).toString("hex"),
    owner: options?.owner ?? "user",
    status: options?.status ?? "active",
    images: options?.images ?? "write",
    apiTokens: options?.apiTokens ?? true,
  };
}

/** Whether the grant covers a route's permission. */
export function allows(grant: TokenGrant, needs: "images:read" | "images:write" | "tokens:read" | undefined): boolean {
  if (needs === undefined) return true;
  if (needs === "tokens:read") return grant.apiTokens;
  if (needs === "images:read") return grant.images !== "none";
  return grant.images === "write";
}

/** GET .../tokens/verify, as Cloudflare answers a known token. */
export function verifyAnswer(grant: TokenGrant): EmuResponse {
  const message = grant.status === "active" ? "This API Token is valid and active" : `This API Token is ${grant.status}`;
  return ok({ id: grant.id, status: grant.status }, { messages: [{ code: 10000, message }] });
}

/** A few real permission groups (names as Cloudflare lists them; the D1 and Workers IDs are Cloudflare's). */
const PERMISSION_GROUPS = [
  { id: "e7a9b3c1d2f04a5b8c6d7e8f9a0b1c2d", name: "Images Write", scopes: ["com.cloudflare.api.account"] },
  { id: "f8b0c4d2e3a15b6c9d7e8f0a1b2c3d4e", name: "Images Read", scopes: ["com.cloudflare.api.account"] },
  { id: "09b2857d1c31407795e75e3fed8617a1", name: "D1 Write", scopes: ["com.cloudflare.api.account"] },
  { id: "192192df92ee43ac90f2aeeffce67e35", name: "D1 Read", scopes: ["com.cloudflare.api.account"] },
  { id: "e086da7e2179491d91ee5f35b3ca210a", name: "Workers Scripts Write", scopes: ["com.cloudflare.api.account"] },
  { id: "1a71c399035b4950a1bd1466bbe4f420", name: "Workers Scripts Read", scopes: ["com.cloudflare.api.account"] },
];

export function permissionGroupsAnswer(): EmuResponse {
  return ok(PERMISSION_GROUPS);
}
