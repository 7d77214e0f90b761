import * as assert from "assert";
import { parseSource, SourceSchema } from "../../components/sources/schema";

const at = "sourcing-kit:sources[1]";
function problems(value: unknown): string[] {
    try {
        parseSource(value, at);
    } catch (error) {
        return (error as Error).message.split("\n");
    }
    return [];
}

describe("source config schema", () => {
    it("accepts one example of every kind", () => {
        const examples = [
            { kind: "urls", urls: ["https://cdn.example.com/a.jpg"] },
            { kind: "manifest", path: "images.csv" },
            { kind: "s3", bucket: "media", prefix: "photos/", region: "eu-west-1", access: "public", publicBaseUrl: "https://media.example.com" },
            { kind: "s3", bucket: "media", endpoint: "https://acc.r2.cloudflarestorage.com", region: "auto", forcePathStyle: true },
            { kind: "cloudinary", cloudName: "demo", apiKey: "k", apiSecret: "s", prefix: "shop/" },
            { kind: "imgix", domain: "acme.imgix.net", paths: ["a.jpg"] },
            { kind: "imgix", domain: "acme.imgix.net", manifest: "paths.csv" },
            { kind: "local", dir: "./images" },
        ];
        for (const example of examples) assert.deepStrictEqual(problems(example), [], JSON.stringify(example));
        assert.ok(SourceSchema.safeParse(examples[0]).success);
    });

    it("reports every problem at once, each naming its config path", () => {
        assert.deepStrictEqual(problems({ kind: "s3", region: "EU West", bukcet: "x", endpoint: "ftp://x" }), [
            `${at}.bucket: bucket is required`,
            `${at}.region: region looks like eu-west-1 (or auto for R2)`,
            `${at}.endpoint: endpoint must be an absolute http(s) URL`,
            `${at}.bukcet: unknown key (check its spelling)`,
        ]);
    });

    it("names the list index of a bad URL and explains kinds, imgix paths and publicBaseUrl", () => {
        assert.deepStrictEqual(problems({ kind: "urls", urls: ["https://ok.example/a.jpg", "/relative.jpg"] }), [`${at}.urls[1]: each url must be an absolute http(s) URL`]);
        assert.deepStrictEqual(problems({ kind: "ftp" }), [`${at}.kind: must be one of urls, manifest, s3, cloudinary, imgix, local`]);
        assert.match(problems({ kind: "imgix", domain: "https://acme.imgix.net" }).join("\n"), /domain: domain is a host name such as example\.imgix\.net/);
        assert.match(problems({ kind: "imgix", domain: "acme.imgix.net" })[0], /\.paths: imgix has no listing API/);
        assert.match(problems({ kind: "s3", bucket: "b", access: "private", publicBaseUrl: "https://x.example" })[0], /\.publicBaseUrl: publicBaseUrl only applies to access: "public"/);
        assert.match(problems({ kind: "s3", bucket: "s3://b/photos" })[0], /\.bucket: bucket is a bucket name, without s3:\/\/ or slashes/);
        assert.match(problems({ kind: "manifest", path: "images.xlsx" })[0], /\.path: path must end in \.csv or \.ndjson/);
        assert.deepStrictEqual(problems({ kind: "urls", urls: ["https://user:pw@cdn.example.com/a.jpg"] }), [`${at}.urls[0]: each url must not carry user:password (it would be stored in state and logs in plain text)`]);
    });
});
