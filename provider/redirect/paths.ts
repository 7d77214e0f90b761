/**
 * The one definition of a redirect key, shared by the Worker (bundled in) and by row writing, so that a path
 * written by RedirectRows and the same path requested at the edge always meet on one D1 row.
 *
 * Rules, in order, on the URL's pathname as the WHATWG URL parser gives it (the same parser in Node and workerd):
 * 1. percent-escapes of characters allowed literally in a path (unreserved A-Z a-z 0-9 - . _ ~, sub-delims
 *    !$&'()*+,;= and `:` `@`) are decoded; other escapes (`%2F`, `%3F`, `%25`, UTF-8 bytes…) get upper-case hex;
 *    a `%` that starts no escape becomes `%25`;
 * 2. any character outside unreserved, sub-delims (!$&'()*+,;=), `:`, `@` and `/` is percent-encoded as UTF-8;
 * 3. runs of `/` collapse into one; a trailing `/` is removed (the root stays `/`);
 * 4. case is kept in the path; the host is lower-cased (by the URL parser) and is part of the key only when
 *    `matchHost` is set, as `host/path` (e.g. `img.example.com/a/b.jpg`);
 * 5. query string and fragment are never part of the key.
 */

const DECODABLE = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]$/;
const ALLOWED_LITERAL = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]$/;
const HEX = /^[0-9A-Fa-f]{2}$/;
const PLACEHOLDER_BASE = "http://path.invalid";

export interface KeyOptions {
    /** Key rows by `host/path` instead of the path alone (old URLs span several hosts). */
    matchHost?: boolean;
}

/** Canonical form of a URL pathname (rules 1-3). */
export function normalisePathname(pathname: string): string {
    let out = "";
    for (let i = 0; i < pathname.length; ) {
        const ch = pathname[i];
        if (ch === "%") {
            const hex = pathname.slice(i + 1, i + 3);
            if (HEX.test(hex)) {
                const decoded = String.fromCharCode(parseInt(hex, 16));
                out += DECODABLE.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
                i += 3;
            } else {
                out += "%25";
                i += 1;
            }
            continue;
        }
        const codePoint = pathname.codePointAt(i)!;
        const char = String.fromCodePoint(codePoint);
        out += ALLOWED_LITERAL.test(char) ? char : encodeUtf8(char);
        i += char.length;
    }
    out = out.replace(/\/{2,}/g, "/");
    if (!out.startsWith("/")) out = `/${out}`;
    if (out.length > 1 && out.endsWith("/")) out = out.slice(0, -1);
    return out;
}

/** The redirect key of an old URL (`https://host/a/b.jpg`) or of a bare path (`/a/b.jpg`). */
export function redirectKey(urlOrPath: string, options: KeyOptions = {}): string {
    const absolute = /^[a-z][a-z0-9+.-]*:\/\//i.test(urlOrPath);
    if (options.matchHost && !absolute) {
        throw new Error(`redirect key "${urlOrPath}": matchHost is set, so old URLs must be absolute (https://host/path)`);
    }
    // A bare path's leading slashes (or backslashes) collapse first, so "//a/b" stays a path, not a host "a".
    const url = absolute ? new URL(urlOrPath) : new URL(urlOrPath.replace(/^[/\\]*/, "/"), PLACEHOLDER_BASE);
    const path = normalisePathname(url.pathname);
    return options.matchHost ? `${url.host.toLowerCase()}${path}` : path;
}

function encodeUtf8(char: string): string {
    let out = "";
    for (const byte of new TextEncoder().encode(char)) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    return out;
}
