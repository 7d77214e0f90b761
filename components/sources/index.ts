import { cloudinarySource } from "./cloudinary";
import { imgixSource } from "./imgix";
import { localSource } from "./local";
import { manifestSource } from "./manifest";
import { s3Source, type AwsSettings } from "./s3";
import { parseSource, type Source } from "./schema";
import { ImageSource } from "./types";
import { urlsSource } from "./urls";

export * from "./types";
export { SourceSchema, parseSource, type Source } from "./schema";

export interface OpenSourceOptions {
    /** Where the source sits in stack config, e.g. `sourcing-kit:sources[1]`; errors name `<configPath>.<field>`. */
    configPath?: string;
    /** AWS settings from stack config for s3 sources (else the standard AWS chain). */
    aws?: AwsSettings;
}

/** Validates a source config and returns its listing; a bad config throws naming `<configPath>.<field>`. */
export function openSource(source: Source | unknown, options: OpenSourceOptions = {}): ImageSource {
    const configPath = options.configPath ?? "source";
    const parsed = parseSource(source, configPath);
    const context = { configPath };
    switch (parsed.kind) {
        case "urls":
            return urlsSource(parsed);
        case "manifest":
            return manifestSource(parsed, context);
        case "s3":
            return s3Source(parsed, { ...context, aws: options.aws });
        case "cloudinary":
            return cloudinarySource(parsed, context);
        case "imgix":
            return imgixSource(parsed, context);
        case "local":
            return localSource(parsed, context);
    }
}
