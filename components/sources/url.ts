import { createHash } from "crypto";

/** The form two URLs are compared in: lower-case scheme and host, no default port, no fragment, no empty query. */
export function normaliseUrl(value: string): string {
    const url = new URL(value);
    url.hash = "";
    if (url.search === "?") url.search = "";
    return url.toString();
}

/** A source key from a URL: its decoded path without the leading `/`, plus the query when there is one. */
export function keyFromUrl(value: string): string {
    const url = new URL(value);
    return safeDecode(url.pathname).replace(/^\/+/, "") + (url.search.length > 1 ? url.search : "");
}

/** The identity of bytes only known by their URL: `url:` + sha256 of the normalised URL. */
export function urlIdentity(value: string): string {
    return "url:" + createHash("sha256").update(normaliseUrl(value)).digest("hex");
}

/** Percent-encodes an object key for a URL path, keeping `/` as the separator. */
export function encodeKeyPath(key: string): string {
    return key
        .split("/")
        .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase()))
        .join("/");
}

function safeDecode(path: string): string {
    try {
        return decodeURIComponent(path);
    } catch {
        return path;
    }
}
