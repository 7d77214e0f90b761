/**
 * Cloudinary delivery paths carry their transformations in the path
 * (`/<cloud>/image/upload/w_400,h_300,c_fill/q_80/v123/folder/id.jpg`). Rows hold the untransformed URL (with and
 * without the version), so on a miss the Worker retries without the transformation segments and expresses them as
 * a flexible variant where it can (w, h, c, q, f, dpr), as for imgix queries.
 */

const DELIVERY_TYPES = new Set(["upload", "fetch", "private", "authenticated"]);
/**
 * Cloudinary's transformation parameter names (https://cloudinary.com/documentation/transformation_reference), the
 * ones a delivery URL can carry as `<name>_<value>`. A path segment is a transformation only when EVERY
 * comma-separated part is one of these with a value: `w_300,c_fill` is, `web_assets` / `img_2020` / `my_folder`
 * (ordinary folders) are not, and stripping them would redirect to a different image.
 */
const TRANSFORM_PARAMETERS = new Set([
    "a", "ac", "af", "ar", "b", "bo", "br", "c", "cs", "co", "d", "dl", "dn", "dpr", "du", "e", "eo", "f", "fl", "fn", "fps",
    "g", "h", "if", "kf", "ki", "l", "o", "pg", "q", "r", "so", "sp", "t", "u", "vc", "vs", "w", "x", "y", "z",
]);

/** `<known parameter>_<value>` for every comma-separated part (a value may itself hold `_`, e.g. `g_north_east`). */
function isTransformSegment(segment: string): boolean {
    if (segment === "" || /^v\d+$/.test(segment)) return false;
    return segment.split(",").every((part) => {
        const underscore = part.indexOf("_");
        return underscore > 0 && underscore < part.length - 1 && TRANSFORM_PARAMETERS.has(part.slice(0, underscore));
    });
}
const CROPS: Record<string, string> = { fill: "cover", lfill: "cover", thumb: "cover", fit: "contain", limit: "scale-down", pad: "pad", lpad: "pad" };
const FORMATS: Record<string, string> = { auto: "auto", webp: "webp", avif: "avif", jpg: "jpg", jpeg: "jpeg" };

export interface CloudinaryFallback {
    /** The key with the transformation segments removed (version and public ID kept). */
    key: string;
    /** The transformations as imgix-style query parameters, for flexibleVariantOptions(). */
    query: URLSearchParams;
}

/** The untransformed key of a transformed Cloudinary key, or undefined when the key carries no transformations. */
export function cloudinaryFallback(key: string): CloudinaryFallback | undefined {
    const slash = key.indexOf("/");
    const host = key.slice(0, slash);
    const segments = key.slice(slash + 1).split("/");
    const [cloud, resourceType, deliveryType, ...rest] = segments;
    if (!cloud || resourceType !== "image" || !DELIVERY_TYPES.has(deliveryType ?? "")) return undefined;
    let transforms = 0;
    while (transforms < rest.length - 1 && isTransformSegment(rest[transforms])) transforms++;
    if (transforms === 0) return undefined;
    const query = new URLSearchParams();
    for (const component of rest.slice(0, transforms).join(",").split(",")) {
        const [name, ...valueParts] = component.split("_");
        const value = valueParts.join("_");
        if (name === "w" || name === "h" || name === "dpr") query.set(name, value.replace(/\.0$/, ""));
        else if (name === "q" && /^\d+$/.test(value)) query.set("q", value);
        else if (name === "c" && CROPS[value]) query.set("fit", CROPS[value]);
        else if (name === "f" && FORMATS[value]) query.set("fm", FORMATS[value]);
    }
    return { key: `${host}/${[cloud, resourceType, deliveryType, ...rest.slice(transforms)].join("/")}`, query };
}
