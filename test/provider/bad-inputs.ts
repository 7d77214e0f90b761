import { SOURCE_HASH_KEY } from "../../provider/source-metadata";

/** A bad input: [what is wrong, the inputs, the property the CheckFailure must name, what its reason must say]. */
export type BadInput = [string, Record<string, unknown>, string, RegExp];

/** Bad CloudflareImage inputs derived from a good one, each expected to fail check() on one property. */
export function badImageInputs(good: Record<string, unknown>): BadInput[] {
    return [
        ["missing account", { ...good, accountId: undefined }, "accountId", /required.*account ID/],
        ["account with a slash", { ...good, accountId: "acc/1" }, "accountId", /account ID/],
        ["empty image id", { ...good, imageId: "" }, "imageId", /empty.*custom ID/],
        ["image id over 1024 characters", { ...good, imageId: "a".repeat(1025) }, "imageId", /1024/],
        ["image id with a leading slash", { ...good, imageId: "/a.jpg" }, "imageId", /start or end with '\/'/],
        ["image id with a trailing slash", { ...good, imageId: "a/" }, "imageId", /start or end with '\/'/],
        ["image id that is a UUID", { ...good, imageId: "8f14e45f-ceea-467f-a8f5-3c5a0b1f2d3e" }, "imageId", /UUID/],
        ["image id with a space", { ...good, imageId: "a b.jpg" }, "imageId", /whitespace/],
        ["image id with an empty segment", { ...good, imageId: "a//b.jpg" }, "imageId", /empty path segment/],
        ["bad url scheme", { ...good, url: "ftp://h/a.jpg" }, "url", /scheme "ftp:".*https:\/\//],
        ["not a url", { ...good, url: "shoe.jpg" }, "url", /not a valid URL/],
        ["credentials in the url", { ...good, url: "https://user:pw@h/a.jpg" }, "url", /credentials/],
        ["presigned url", { ...good, url: "https://b.s3.amazonaws.com/a.jpg?X-Amz-Signature=ab&X-Amz-Credential=c" }, "url", /s3:\/\/bucket\/key/],
        ["s3 url without a key", { ...good, url: "s3://my-bucket/" }, "url", /no object key/],
        ["both url and filePath", { ...good, filePath: "a.jpg" }, "url", /exactly one/],
        ["neither url nor filePath", { ...good, url: undefined }, "url", /exactly one/],
        ["missing source hash", { ...good, sourceHash: undefined }, "sourceHash", /required.*ETag/],
        ["metadata over 1024 bytes", { ...good, metadata: { alt: "x".repeat(1020) } }, "metadata", /1024/],
        ["nested metadata value", { ...good, metadata: { tags: ["a"] } }, "metadata.tags", /string, number or boolean/],
        ["reserved metadata key", { ...good, metadata: { [SOURCE_HASH_KEY]: "x" } }, `metadata.${SOURCE_HASH_KEY}`, /reserved/],
        ["requireSignedURLs with a custom ID", { ...good, requireSignedURLs: true }, "requireSignedURLs", /custom ID.*false/],
        ["requireSignedURLs not a boolean", { ...good, requireSignedURLs: "yes" }, "requireSignedURLs", /true or false/],
        ["onConflict outside the enum", { ...good, onConflict: "skip" }, "onConflict", /adopt, overwrite or fail/],
        ["apiBaseUrl not http", { ...good, apiBaseUrl: "api.cloudflare.com" }, "apiBaseUrl", /http\(s\)/],
        ["apiToken with whitespace", { ...good, apiToken: "abc def" }, "apiToken", /whitespace/],
        ["s3 options on an https url", { ...good, s3: { region: "eu-west-1" } }, "s3", /s3:\/\//],
        ["unknown s3 option", { ...good, url: "s3://my-bucket/a.jpg", s3: { bucket: "x" } }, "s3", /region, endpoint and forcePathStyle/],
        ["unknown property", { ...good, metdata: { a: 1 } }, "metdata", /unknown property.*metadata/],
    ];
}
