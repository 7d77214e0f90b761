// Reads a small JSON request body (PATCH, D1 query) with a size cap.
import type { IncomingMessage } from "node:http";
import { badRequest, CfError } from "./envelope";

export async function readJsonBody(req: IncomingMessage, maxBytes: number, errorCode?: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw fail(`Request body exceeds ${maxBytes} bytes`, errorCode);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw fail(`Request body is not valid JSON: ${(err as Error).message}`, errorCode);
  }
}

function fail(message: string, code?: number): CfError {
  return code === undefined ? badRequest(message) : new CfError(400, code, message);
}
