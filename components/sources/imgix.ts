import { readManifest } from "./manifest";
import { ImgixSource } from "./schema";
import { ImageSource, SourceContext } from "./types";
import { imageFromUrl } from "./urls";

/**
 * An imgix domain plus paths (a list, or a manifest of paths or URLs): imgix has no listing API, so this only
 * rewrites each path to `https://<domain>/<path>`, which Cloudflare fetches (imgix serves the original without
 * parameters) and which later redirects to the new image.
 */
export function imgixSource(source: ImgixSource, context: SourceContext): ImageSource {
    return {
        async *list() {
            for (const path of source.paths ?? []) yield imageFromUrl(imgixUrl(source.domain, path));
            if (source.manifest !== undefined) {
                const rows = readManifest(source.manifest, { configPath: context.configPath, field: "manifest", locate: "path-or-url" });
                for await (const row of rows) {
                    const url = imgixUrl(source.domain, row.path ?? pathOf(row.url!));
                    yield imageFromUrl(url, { id: row.id, contentHash: row.hash, metadata: row.metadata });
                }
            }
        },
    };
}

/** `https://<domain>/<path>`; the path may be given with or without its leading `/`, encoded or not. */
export function imgixUrl(domain: string, path: string): string {
    return new URL(path.replace(/^\/*/, "/"), `https://${domain}`).toString();
}

function pathOf(url: string): string {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
}
