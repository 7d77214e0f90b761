// Plain-fetch helpers for tests that need raw HTTP against the emulator (statuses, headers, envelopes).

export interface Answer {
  status: number;
  headers: Headers;
  body: { success: boolean; errors: { code: number; message: string }[]; messages: unknown[]; result: any } | any;
}

export interface CallOptions {
  token?: string;
  json?: unknown;
  form?: FormData;
  headers?: Record<string, string>;
}

/** One request to `${base}${path}` with a bearer token; the body is parsed as JSON when it is JSON. */
export async function call(base: string, method: string, path: string, opts: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(opts.token !== "" ? { authorization: `Bearer ${opts.token ?? "test-token"}` } : {}), ...opts.headers };
  let body: string | FormData | undefined;
  if (opts.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.form) body = opts.form;
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get("content-type") ?? "").includes("json")) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed };
}

/** A multipart upload form: text fields plus an optional `file` part. */
export function uploadForm(fields: Record<string, string>, file?: { bytes: Buffer; filename?: string }): FormData {
  const form = new FormData();
  if (file) form.append("file", new Blob([file.bytes]), file.filename ?? "upload.bin");
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return form;
}

/** The single error code of a failed envelope. */
export function errorCode(a: Answer): number | undefined {
  return a.body?.errors?.[0]?.code;
}
