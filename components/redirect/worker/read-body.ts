/** Reading a request or response body with a byte limit, so an oversized one never sits whole in the isolate's memory. */

/** The body, or undefined as soon as it passes `limit` bytes (the rest is not read). */
export async function readAtMost(message: { readonly body: ReadableStream<Uint8Array> | null }, limit: number): Promise<Uint8Array | undefined> {
    if (!message.body) return new Uint8Array(0);
    const reader = message.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.length;
        if (size > limit) {
            await reader.cancel();
            return undefined;
        }
        chunks.push(value);
    }
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.length;
    }
    return bytes;
}

/** A declared `content-length` over `limit` (an absent or unparsable header is not: the read limit still applies). */
export function declaredOver(headers: Headers, limit: number): boolean {
    const declared = Number(headers.get("content-length") ?? "");
    return Number.isFinite(declared) && declared > limit;
}
