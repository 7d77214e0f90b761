// Custom image ID rules and generated IDs (pure apart from randomUUID).
import { randomUUID } from "node:crypto";

export const MAX_ID_LENGTH = 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(id: string): boolean {
  return UUID.test(id);
}

/** Why `id` is not a valid custom ID, or undefined when it is. */
export function customIdProblem(id: string): string | undefined {
  if (id.length === 0) return "Custom ID must not be empty";
  if ([...id].length > MAX_ID_LENGTH) return `Custom ID must be at most ${MAX_ID_LENGTH} characters`;
  if (isUuid(id)) return "Custom ID must not be a UUID";
  if (id.startsWith("/") || id.endsWith("/")) return "Custom ID must not start or end with a /";
  return undefined;
}

/** Cloudflare-generated IDs look like UUIDs, which custom IDs never are. */
export function generateImageId(): string {
  return randomUUID();
}
