// Reads a multipart/form-data upload into text fields and at most one `file` part, within the 10 MB limit.
import type { IncomingMessage } from "node:http";
import busboy from "busboy";
import { badRequest, CfError, codes } from "./envelope";
import { MAX_IMAGE_BYTES } from "./image-format";

export interface UploadForm {
  fields: Map<string, string>;
  file?: { bytes: Buffer; filename?: string };
  /** Number of `file` parts seen (more than one is an error). */
  fileParts: number;
}

export function tooLarge(): CfError {
  return new CfError(413, codes.badRequest, `Image exceeds the maximum file size of ${MAX_IMAGE_BYTES} bytes (10 MB)`);
}

export function readUploadForm(req: IncomingMessage): Promise<UploadForm> {
  const type = req.headers["content-type"] ?? "";
  if (!/^multipart\/form-data/i.test(type)) {
    return Promise.reject(badRequest(`Content-Type must be multipart/form-data for uploads (got "${type || "none"}")`));
  }
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fileSize: MAX_IMAGE_BYTES + 1, fieldSize: 1024 * 1024, fields: 200, files: 4 } });
    } catch (err) {
      reject(badRequest(`Malformed multipart body: ${(err as Error).message}`));
      return;
    }
    const form: UploadForm = { fields: new Map(), fileParts: 0 };
    let truncated = false;
    parser.on("file", (name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => {
        if (name === "file") chunks.push(c);
      });
      stream.on("limit", () => {
        if (name === "file") truncated = true;
      });
      stream.on("end", () => {
        if (name !== "file") return;
        form.fileParts++;
        form.file = { bytes: Buffer.concat(chunks), filename: info.filename };
      });
    });
    parser.on("field", (name, value) => {
      if (name === "file") {
        form.fileParts++;
        form.file = { bytes: Buffer.from(value, "utf8") };
      } else {
        form.fields.set(name, value);
      }
    });
    parser.on("error", (err: Error) => reject(badRequest(`Malformed multipart body: ${err.message}`)));
    parser.on("close", () => (truncated ? reject(tooLarge()) : resolve(form)));
    req.pipe(parser);
  });
}

/** Bracketed fields (`metadata[a]=1`, `metadata[a][b]=2`), as the official SDK sends objects, rebuilt as an object. */
export function bracketedObject(fields: Map<string, string>, prefix: string): Record<string, unknown> | undefined {
  let out: Record<string, unknown> | undefined;
  for (const [name, value] of fields) {
    if (!name.startsWith(`${prefix}[`)) continue;
    const keys = [...name.slice(prefix.length).matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]);
    if (keys.length === 0) continue;
    out ??= {};
    let node = out;
    for (const key of keys.slice(0, -1)) {
      const next = node[key];
      node = (next && typeof next === "object" ? next : (node[key] = {})) as Record<string, unknown>;
    }
    node[keys[keys.length - 1]] = value;
  }
  return out;
}
