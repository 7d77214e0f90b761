import * as assert from "assert";
import * as pulumi from "@pulumi/pulumi";
import { CustomIdClaims, findCrossSetCollision } from "../../components/custom-id-claims";
import { MigratedImageSet, MigratedImageSetData } from "../../components/migrated-image-set";

const IMAGE_TYPE = "pulumi-nodejs:dynamic/sourcing-kit:CloudflareImage";

function dataOf(set: MigratedImageSet): Promise<MigratedImageSetData> {
    return (set as unknown as { getData(): Promise<MigratedImageSetData> }).getData();
}

/** A failed set's outputs reject too; handle them so only the assertions speak. */
function quiet(set: MigratedImageSet): void {
    for (const output of [set.planned, set.skipped, set.duplicates, set.mapping]) {
        (output as unknown as { promise(): Promise<unknown> }).promise().catch(() => undefined);
    }
}

describe("custom ID claims across image sets", () => {
    describe("findCrossSetCollision (pure)", () => {
        it("finds nothing when every custom ID belongs to one set", () => {
            assert.strictEqual(findCrossSetCollision([
                { configPath: "sourcing-kit:sources[0]", images: [{ imageId: "a.png", key: "a.png" }, { imageId: "b.png", key: "b.png" }] },
                { configPath: "sourcing-kit:sources[1]", images: [{ imageId: "blog/a.png", key: "a.png" }] },
            ]), undefined);
        });

        it("names both sets, both source keys and the fix when two sets plan one custom ID", () => {
            const error = findCrossSetCollision([
                { configPath: "sourcing-kit:sources[0]", images: [{ imageId: "logo.png", key: "https://old-cdn.example.com/logo.png" }] },
                { configPath: "sourcing-kit:sources[1]", images: [{ imageId: "logo.png", key: "https://blog.example.com/logo.png" }] },
            ]);
            assert.strictEqual(error?.message,
                'sourcing-kit:sources[1]: image id "logo.png" (from https://blog.example.com/logo.png) is also planned by ' +
                "sourcing-kit:sources[0] (from https://old-cdn.example.com/logo.png): give one of them an idPrefix, " +
                "or exclude the image from one of them");
            assert.strictEqual(error?.configKey, "sourcing-kit:sources[1]");
        });
    });

    describe("the barrier", () => {
        it("releases no set until every set has planned", async () => {
            const claims = new CustomIdClaims(2);
            let released = false;
            const first = claims.claim({ configPath: "s[0]", images: [{ imageId: "a", key: "a" }] }).then(() => { released = true; });
            await new Promise((r) => setImmediate(r));
            assert.strictEqual(released, false);
            await claims.claim({ configPath: "s[1]", images: [{ imageId: "b", key: "b" }] });
            await first;
            assert.strictEqual(released, true);
        });

        it("rejects every waiting set on a collision", async () => {
            const claims = new CustomIdClaims(2);
            const first = claims.claim({ configPath: "s[0]", images: [{ imageId: "a", key: "x/a" }] });
            const second = claims.claim({ configPath: "s[1]", images: [{ imageId: "a", key: "y/a" }] });
            await assert.rejects(first, /s\[1\]: image id "a" \(from y\/a\) is also planned by s\[0\] \(from x\/a\)/);
            await assert.rejects(second, /is also planned by s\[0\]/);
        });

        it("stops the other sets when one cannot plan, instead of waiting for it forever", async () => {
            const claims = new CustomIdClaims(2);
            const first = claims.claim({ configPath: "s[0]", images: [] });
            claims.abandon("s[1]", new Error("s[1].bucket: bucket \"x\" does not exist\nmore"));
            await assert.rejects(first, /^SourceError: not declared: s\[1\] failed \(s\[1\]\.bucket: bucket "x" does not exist\)$/);
        });
    });

    describe("two MigratedImageSets under mocks", () => {
        const registered: string[] = [];

        before(async () => {
            await pulumi.runtime.setMocks({
                newResource(args) {
                    registered.push(`${args.type}::${args.name}`);
                    return { id: `${args.name}-id`, state: args.inputs };
                },
                call: () => ({}),
            }, "sourcing-kit", "claims", true);
        });

        beforeEach(() => {
            registered.length = 0;
        });

        const base = { accountId: "acc-test", accountHash: "hash-test" };

        it("fails both sets by config path and declares no image when their sources land on one custom ID", async () => {
            const idClaims = new CustomIdClaims(2);
            const sets = [
                new MigratedImageSet("old-cdn", { ...base, idClaims, configPath: "sourcing-kit:sources[0]",
                    source: { kind: "urls", urls: ["https://old-cdn.example.com/logo.png", "https://old-cdn.example.com/a.png"] } }),
                new MigratedImageSet("blog", { ...base, idClaims, configPath: "sourcing-kit:sources[1]",
                    source: { kind: "urls", urls: ["https://blog.example.com/logo.png"] } }),
            ];
            sets.forEach(quiet);
            for (const set of sets) {
                await assert.rejects(dataOf(set), (error: Error) => {
                    assert.ok(error instanceof pulumi.RunError, "shown without a stack trace");
                    assert.match(error.message, /sourcing-kit:sources\[1\]: image id "logo\.png" .* is also planned by sourcing-kit:sources\[0\]/);
                    return true;
                });
            }
            await new Promise((r) => setImmediate(r));
            assert.deepStrictEqual(registered.filter((r) => r.startsWith(IMAGE_TYPE)), []);
        });

        it("declares every image of both sets when their custom IDs differ", async () => {
            const idClaims = new CustomIdClaims(2);
            const sets = [
                new MigratedImageSet("old-cdn", { ...base, idClaims, source: { kind: "urls", urls: ["https://old-cdn.example.com/logo.png"] } }),
                new MigratedImageSet("blog", { ...base, idClaims, idPrefix: "blog", source: { kind: "urls", urls: ["https://blog.example.com/logo.png"] } }),
            ];
            const planned = await Promise.all(sets.map((set) => dataOf(set).then((d) => d.planned)));
            assert.deepStrictEqual(planned, [1, 1]);
            for (let spins = 0; registered.filter((r) => r.startsWith(IMAGE_TYPE)).length < 2 && spins < 10_000; spins++) {
                await new Promise((r) => setImmediate(r));
            }
            assert.deepStrictEqual(registered.filter((r) => r.startsWith(IMAGE_TYPE)).sort(),
                [`${IMAGE_TYPE}::img-blog/logo.png`, `${IMAGE_TYPE}::img-logo.png`]);
        });
    });
});
