/** Webhook authentication: HMAC-SHA256 over "<timestamp>.<body>", hex, in `x-sourcing-kit-signature: sha256=<hex>`. */

export const MAX_SKEW_SECONDS = 300;

export type SignatureCheck = { ok: true; signature: string } | { ok: false; reason: string };

function hexToBytes(hex: string): Uint8Array | undefined {
    if (!/^(?:[0-9a-f]{2})+$/i.test(hex)) return undefined;
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    return out;
}

async function hmacKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
    return crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

/** Hex HMAC-SHA256 of "<timestamp>.<body>" (what a sender puts after `sha256=`). */
export async function signWebhook(secret: string, timestamp: string, body: string): Promise<string> {
    const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret, "sign"), new TextEncoder().encode(`${timestamp}.${body}`));
    return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Checks timestamp freshness and the signature (constant-time, through WebCrypto verify). */
export async function checkSignature(secret: string, timestampHeader: string | null, signatureHeader: string | null,
    body: string, nowSeconds: number): Promise<SignatureCheck> {
    if (!timestampHeader || !/^\d{1,12}$/.test(timestampHeader)) return { ok: false, reason: "missing or malformed x-sourcing-kit-timestamp" };
    if (Math.abs(nowSeconds - Number(timestampHeader)) > MAX_SKEW_SECONDS) return { ok: false, reason: "timestamp outside the 5-minute window" };
    const match = /^sha256=([0-9a-fA-F]{64})$/.exec(signatureHeader ?? "");
    const mac = match ? hexToBytes(match[1]) : undefined;
    if (!match || !mac) return { ok: false, reason: "missing or malformed x-sourcing-kit-signature" };
    const valid = await crypto.subtle.verify("HMAC", await hmacKey(secret, "verify"), mac,
        new TextEncoder().encode(`${timestampHeader}.${body}`));
    return valid ? { ok: true, signature: match[1].toLowerCase() } : { ok: false, reason: "signature mismatch" };
}
