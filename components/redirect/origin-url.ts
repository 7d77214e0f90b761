/**
 * The old-origin URL a passthrough request goes to: ORIGIN_URL's origin + its path prefix + the request path (runs of
 * `/` collapsed) + the query, built as one string. Never `new URL(path, ORIGIN_URL)`: a request path such as
 * `//evil.example/x` (or `/\evil`, which the URL parser reads as `//evil`) would resolve as a protocol-relative URL
 * to another host, turning the Worker into an open proxy.
 *
 * Returns undefined when ORIGIN_URL is not an absolute http(s) URL or the result would leave its origin or prefix.
 */
export function originTarget(originUrl: string, pathname: string, search = ""): string | undefined {
    let origin: URL;
    try {
        origin = new URL(originUrl);
    } catch {
        return undefined;
    }
    if (origin.protocol !== "http:" && origin.protocol !== "https:") return undefined;
    const prefix = origin.pathname.replace(/\/+$/, "");
    const path = `/${pathname}`.replace(/\/{2,}/g, "/");
    const query = search === "" || search.startsWith("?") ? search : `?${search}`;
    let target: URL;
    try {
        target = new URL(`${origin.origin}${prefix}${path}${query}`);
    } catch {
        return undefined;
    }
    const inside = target.origin === origin.origin && (target.pathname === prefix || target.pathname.startsWith(`${prefix}/`));
    return inside ? target.href : undefined;
}
