/**
 * Delivery-URL helpers shared by the Worker and row writing: which image a delivery URL names, and how an old
 * CDN's resize query (imgix `w`, `h`, `q`, `fm`, `fit`, `dpr`, `auto=format`; generic `width`, `height`,
 * `quality`, `format`, `f`) becomes a Cloudflare Images flexible variant (`/<hash>/<id>/w=400,h=300,quality=80`).
 * Values a flexible variant cannot express (png/gif output, imgix `fit=scale`, out-of-range numbers) are dropped,
 * so the image is served with the remaining options (or the stored variant when none remain).
 */

/** `<prefix>/<hash>/<id...>/<variant>`: imagedelivery.net or a zone's `/cdn-cgi/imagedelivery`. */
interface DeliveryParts { prefix: string; hash: string; imageId: string; rawImageId: string; variant: string }

export function parseDeliveryUrl(location: string): DeliveryParts | undefined {
    let url: URL;
    try {
        url = new URL(location);
    } catch {
        return undefined;
    }
    const segments = url.pathname.split("/").slice(1);
    let prefix = `${url.origin}`;
    if (url.hostname !== "imagedelivery.net") {
        if (segments[0] !== "cdn-cgi" || segments[1] !== "imagedelivery") return undefined;
        segments.splice(0, 2);
        prefix += "/cdn-cgi/imagedelivery";
    }
    if (segments.length < 3 || segments.some((s) => s === "")) return undefined;
    const [hash, ...rest] = segments;
    const variant = rest.pop()!;
    return { prefix, hash, imageId: rest.map(safeDecode).join("/"), rawImageId: rest.join("/"), variant };
}

function safeDecode(segment: string): string {
    try {
        return decodeURIComponent(segment);
    } catch {
        return segment;
    }
}

/** The custom image ID a delivery URL serves, or null for other URLs. */
export function imageIdOf(location: string): string | null {
    return parseDeliveryUrl(location)?.imageId ?? null;
}

const FORMATS: Record<string, string> = {
    jpg: "jpeg", jpeg: "jpeg", pjpg: "jpeg", webp: "webp", avif: "avif", auto: "auto", "baseline-jpeg": "baseline-jpeg",
};
const FITS: Record<string, string> = {
    clip: "contain", max: "scale-down", crop: "cover", fill: "pad", fillmax: "pad",
    "scale-down": "scale-down", contain: "contain", cover: "cover", pad: "pad",
};

function intIn(value: string | null, min: number, max: number): string | undefined {
    if (value === null || !/^\d+$/.test(value)) return undefined;
    const n = Number(value);
    return n >= min && n <= max ? String(n) : undefined;
}

function dprOf(value: string | null): string | undefined {
    if (value === null || !/^\d+(\.\d+)?$/.test(value)) return undefined;
    const n = Number(value);
    return n > 0 && n <= 10 ? String(n) : undefined;
}

/** Flexible-variant options (in a stable order) for an old CDN query; empty when nothing carries over. */
export function flexibleVariantOptions(query: URLSearchParams): string[] {
    const first = (...names: string[]): string | null => {
        for (const name of names) {
            const value = query.get(name);
            if (value !== null) return value.trim().toLowerCase();
        }
        return null;
    };
    const options: string[] = [];
    const push = (key: string, value: string | undefined): void => {
        if (value !== undefined) options.push(`${key}=${value}`);
    };
    push("w", intIn(first("w", "width"), 1, 12000));
    push("h", intIn(first("h", "height"), 1, 12000));
    push("fit", FITS[first("fit") ?? ""]);
    push("quality", intIn(first("q", "quality"), 1, 100));
    const auto = (first("auto") ?? "").split(",").map((s) => s.trim());
    push("format", FORMATS[first("fm", "format", "f") ?? ""] ?? (auto.includes("format") ? "auto" : undefined));
    push("dpr", dprOf(first("dpr")));
    return options;
}

/** The redirect target: the stored delivery URL, or its flexible variant when the query carries resize options. */
export function redirectLocation(location: string, query: URLSearchParams, flexibleVariants: boolean): string {
    if (!flexibleVariants) return location;
    const parts = parseDeliveryUrl(location);
    const options = flexibleVariantOptions(query);
    if (!parts || options.length === 0) return location;
    return `${parts.prefix}/${parts.hash}/${parts.rawImageId}/${options.join(",")}`;
}
