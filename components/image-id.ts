import { createHash } from "crypto";

/** Cloudflare's limit on custom IDs. */
export const MAX_IMAGE_ID_LENGTH = 1024;

const SAFE_ID = /^[A-Za-z0-9._~/-]+$/;
const UNSAFE_CHAR = /[^A-Za-z0-9._~/-]/gu;
// Dashed or bare (32 hex digits): either form may be read as a UUID, so neither is a custom ID.
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const EXTENSION = /\.[A-Za-z0-9]{1,8}$/;

/**
 * True when `id` is a custom ID this project emits: 1..1024 characters from [A-Za-z0-9._~/-] (they survive delivery
 * URLs unencoded, so no `%`), no leading or trailing `/`, no empty, `.` or `..` path segment, and not a UUID.
 */
export function isValidImageId(id: string): boolean {
    return (
        id.length > 0 &&
        id.length <= MAX_IMAGE_ID_LENGTH &&
        SAFE_ID.test(id) &&
        !UUID.test(id) &&
        id.split("/").every((segment) => segment !== "" && segment !== "." && segment !== "..")
    );
}

/**
 * The custom ID for a source key: the key itself (under `prefix/` when a prefix is given) when that is already a
 * valid ID, otherwise a cleaned-up form with a short hash of the original appended before the extension, so that
 * two keys that clean up alike still get distinct IDs. Deterministic; never throws; always valid.
 */
export function deriveImageId(key: string, prefix?: string): string {
    const original = prefix ? `${prefix.replace(/^\/+|\/+$/g, "")}/${key}` : key;
    const cleaned = clean(original);
    if (cleaned === original && isValidImageId(cleaned)) return cleaned;
    return withHashSuffix(cleaned, shortHash(original));
}

/** A short, stable fingerprint of a key (8 hex characters of its sha256). */
export function shortHash(value: string): string {
    return createHash("sha256").update(value).digest("hex").slice(0, 8);
}

function clean(value: string): string {
    const folded = value.normalize("NFKD").replace(/\p{M}/gu, "");
    return folded
        .replace(UNSAFE_CHAR, "-")
        .split("/")
        .filter((segment) => segment !== "")
        .map((segment) => (segment === "." || segment === ".." ? segment.replace(/\./g, "-") : segment))
        .join("/");
}

function withHashSuffix(cleaned: string, hash: string): string {
    const base = cleaned === "" ? "image" : cleaned;
    const lastSegment = base.slice(base.lastIndexOf("/") + 1);
    const extension = EXTENSION.test(lastSegment) && !lastSegment.startsWith(".") ? EXTENSION.exec(lastSegment)![0] : "";
    const suffix = `-${hash}${extension}`;
    const stem = base.slice(0, base.length - extension.length).slice(0, MAX_IMAGE_ID_LENGTH - suffix.length);
    // A stem cut right after a `/` would leave an empty segment before the suffix: drop the dangling slash.
    return stem.replace(/\/+$/, "") + suffix;
}
