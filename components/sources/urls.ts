import { ImageSource, SourceImage } from "./types";
import { UrlsSource } from "./schema";
import { keyFromUrl, normaliseUrl } from "./url";

/** A plain list of URLs: each URL is fetched by Cloudflare and redirected from; without a hash the URL is its identity. */
export function urlsSource(source: UrlsSource): ImageSource {
    return {
        async *list() {
            for (const url of source.urls) yield imageFromUrl(url);
        },
    };
}

/** The SourceImage for one URL (keyed by its path, redirected from its normalised form). */
export function imageFromUrl(url: string, extra: Partial<Pick<SourceImage, "id" | "contentHash" | "metadata">> = {}): SourceImage {
    const normalised = normaliseUrl(url);
    return { key: keyFromUrl(normalised), url: normalised, oldUrls: [normalised], ...definedOnly(extra) };
}

function definedOnly<T extends object>(value: T): Partial<T> {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
