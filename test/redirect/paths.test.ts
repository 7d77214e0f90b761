import { strict as assert } from "assert";
import fc from "fast-check";
import { normalisePathname, redirectKey } from "../../provider/redirect/paths";
import { flexibleVariantOptions, imageIdOf, redirectLocation } from "../../provider/redirect/delivery-url";
import { schemaStatements } from "../../provider/redirect/schema";
import { cloudinaryFallback } from "../../components/redirect/cloudinary";
import { originTarget } from "../../components/redirect/origin-url";

describe("redirect key normalisation", () => {
    const cases: [string, string][] = [
        ["/a/b.jpg", "/a/b.jpg"],
        ["/a//b///c.jpg", "/a/b/c.jpg"],
        ["/a/b/", "/a/b"],
        ["/", "/"],
        ["", "/"],
        ["a/b.jpg", "/a/b.jpg"],
        ["//a/b.jpg", "/a/b.jpg"],
        ["\\\\a\\b.jpg", "/a/b.jpg"],
        ["/%61%2d%7E/x.jpg", "/a-~/x.jpg"],
        ["/a%2fb.jpg", "/a%2Fb.jpg"],
        ["/a b.jpg", "/a%20b.jpg"],
        ["/caf\u00e9.jpg", "/caf%C3%A9.jpg"],
        ["/caf%c3%a9.jpg", "/caf%C3%A9.jpg"],
        ["/100%.jpg", "/100%25.jpg"],
        ["/x|y^z.jpg", "/x%7Cy%5Ez.jpg"],
        ["/Photos/IMG.JPG", "/Photos/IMG.JPG"],
        ["/a/b.jpg?w=100#frag", "/a/b.jpg"],
        ["https://IMG.Example.COM//a/b.jpg/?q=1", "/a/b.jpg"],
        ["/a/./b/../c.jpg", "/a/c.jpg"],
        ["/it's(1)+x=y,z;@:!$&*.jpg", "/it's(1)+x=y,z;@:!$&*.jpg"],
    ];
    for (const [input, expected] of cases) {
        it(`normalises ${JSON.stringify(input)} to ${expected}`, () => assert.equal(redirectKey(input), expected));
    }

    it("is idempotent on its own output", () => {
        for (const [input] of cases) {
            const once = redirectKey(input);
            assert.equal(normalisePathname(once), once);
            assert.equal(redirectKey(once), once);
        }
    });

    it("gives the same key for a request URL as for the row's old URL (the Worker's and the writer's view)", () => {
        const old = "https://cdn.example.com/Gallery/My Photo (1).JPG";
        const requested = new URL("https://cdn.example.com//Gallery/My%20Photo%20%281%29.JPG/?w=300");
        assert.equal(redirectKey(requested.toString()), redirectKey(old));
    });

    it("is idempotent and stable under re-parsing for arbitrary paths (property)", () => {
        const char = fc.oneof(fc.constantFrom("/", "//", "%", "%2f", "%41", "%zz", " ", "?", "#", ".", "..", "~", "'", "é", "\u{1F600}", "\\"),
            fc.string({ unit: "grapheme", maxLength: 3 }));
        fc.assert(fc.property(fc.array(char, { maxLength: 12 }), (parts) => {
            const key = redirectKey(`/${parts.join("")}`);
            assert.equal(redirectKey(key), key);
            assert.equal(redirectKey(`https://Example.com${key}/`), key);
            assert.ok(key.startsWith("/") && !key.includes("//") && (key === "/" || !key.endsWith("/")));
        }), { numRuns: 500 });
    });

    it("keys by lower-cased host and path when matchHost is set", () => {
        assert.equal(redirectKey("https://IMG.example.com/a/", { matchHost: true }), "img.example.com/a");
        assert.throws(() => redirectKey("/a.jpg", { matchHost: true }), /matchHost is set/);
    });
});

describe("delivery URLs and flexible variants", () => {
    const stored = "https://imagedelivery.net/hash-test/products/shoe.jpg/public";

    it("reads the custom ID (slashes included) from imagedelivery.net and /cdn-cgi/imagedelivery URLs", () => {
        assert.equal(imageIdOf(stored), "products/shoe.jpg");
        assert.equal(imageIdOf("https://shop.example.com/cdn-cgi/imagedelivery/h/abc/thumb"), "abc");
        assert.equal(imageIdOf("https://example.com/a/b/c"), null);
        assert.equal(imageIdOf("not a url"), null);
    });

    const queries: [string, string[]][] = [
        ["w=400&h=300&q=80&fm=webp", ["w=400", "h=300", "quality=80", "format=webp"]],
        ["width=200&quality=50&format=avif", ["w=200", "quality=50", "format=avif"]],
        ["fm=jpg&fit=crop&dpr=2", ["fit=cover", "format=jpeg", "dpr=2"]],
        ["auto=compress,format", ["format=auto"]],
        ["fm=png&fit=scale&w=-1&q=900&h=abc", []],
        ["foo=bar", []],
    ];
    for (const [query, expected] of queries) {
        it(`maps ?${query} to [${expected.join(",")}]`, () =>
            assert.deepEqual(flexibleVariantOptions(new URLSearchParams(query)), expected));
    }

    it("swaps the variant for the options only when flexible variants are on and something carries over", () => {
        const q = new URLSearchParams("w=400&fm=webp");
        assert.equal(redirectLocation(stored, q, true), "https://imagedelivery.net/hash-test/products/shoe.jpg/w=400,format=webp");
        assert.equal(redirectLocation(stored, q, false), stored);
        assert.equal(redirectLocation(stored, new URLSearchParams("x=1"), true), stored);
        assert.equal(redirectLocation("https://example.com/a.jpg", q, true), "https://example.com/a.jpg");
    });
});

describe("Cloudinary transformed paths", () => {
    it("strips transformation segments, keeps version and public ID, and maps what a flexible variant can express", () => {
        const fallback = cloudinaryFallback("/demo/image/upload/w_400,h_300,c_fill/q_80,f_webp,e_sepia/v123/shop/shoe.jpg")!;
        assert.equal(fallback.key, "/demo/image/upload/v123/shop/shoe.jpg");
        assert.deepEqual(flexibleVariantOptions(fallback.query), ["w=400", "h=300", "fit=cover", "quality=80", "format=webp"]);
        assert.equal(cloudinaryFallback("img.example.com/demo/image/upload/c_limit,w_50/x.png")?.key, "img.example.com/demo/image/upload/x.png");
    });

    it("leaves untransformed and non-Cloudinary paths alone", () => {
        assert.equal(cloudinaryFallback("/demo/image/upload/v123/shoe.jpg"), undefined);
        assert.equal(cloudinaryFallback("/demo/video/upload/w_100/clip.mp4"), undefined);
        assert.equal(cloudinaryFallback("/a/b/c/w_100/d.jpg"), undefined);
        assert.equal(cloudinaryFallback("/demo/image/upload/w_100"), undefined);
    });

    it("keeps ordinary folders with an underscore (web_assets, img_2020, my_folder): only known parameters are transformations", () => {
        for (const folder of ["web_assets", "img_2020", "my_folder", "ab_c", "w_300,web_assets", "w_", "_300", "v_1"]) {
            assert.equal(cloudinaryFallback(`/demo/image/upload/${folder}/logo.png`), undefined, folder);
        }
        assert.equal(cloudinaryFallback("/demo/image/upload/w_300,web_assets/logo.png"), undefined);
        assert.equal(cloudinaryFallback("/demo/image/upload/c_fill,w_300/web_assets/logo.png")?.key, "/demo/image/upload/web_assets/logo.png");
        assert.equal(cloudinaryFallback("/demo/image/upload/g_north_east,l_text:Arial_20:hi/fl_progressive/v9/a.jpg")?.key, "/demo/image/upload/v9/a.jpg");
    });
});

describe("origin passthrough URLs", () => {
    const ORIGIN = "https://origin.example.com/legacy/";
    const cases: [string, string, string | undefined][] = [
        ["/a/b.jpg", "?v=2", "https://origin.example.com/legacy/a/b.jpg?v=2"],
        ["//evil.example/x", "", "https://origin.example.com/legacy/evil.example/x"],
        ["//", "", "https://origin.example.com/legacy/"],
        ["/", "", "https://origin.example.com/legacy/"],
        ["a//b///c.jpg", "q=1", "https://origin.example.com/legacy/a/b/c.jpg?q=1"],
        ["/a/", "", "https://origin.example.com/legacy/a/"],
        ["/%2F%2Fevil.example/x", "", "https://origin.example.com/legacy/%2F%2Fevil.example/x"],
    ];
    for (const [pathname, search, expected] of cases) {
        it(`sends ${JSON.stringify(pathname + search)} to ${expected}`, () => assert.equal(originTarget(ORIGIN, pathname, search), expected));
    }

    it("uses the origin alone when ORIGIN_URL has no path prefix, and refuses an ORIGIN_URL that is not http(s)", () => {
        assert.equal(originTarget("http://127.0.0.1:8080", "//127.0.0.1:9/steal"), "http://127.0.0.1:8080/127.0.0.1:9/steal");
        assert.equal(originTarget("http://127.0.0.1:8080", "//"), "http://127.0.0.1:8080/");
        assert.equal(originTarget("not a url", "/a"), undefined);
        assert.equal(originTarget("file:///etc", "/passwd"), undefined);
    });

    it("never leaves ORIGIN_URL's origin or prefix for any path the URL parser can give (property)", () => {
        const piece = fc.oneof(fc.constantFrom("/", "//", "\\", "\\\\", "..", ".", "%2e%2e", "%2F", "@", ":", "evil.example", "?", "#", "%"),
            fc.string({ maxLength: 6 }));
        fc.assert(fc.property(fc.array(piece, { maxLength: 10 }), (parts) => {
            const request = new URL(`http://old-cdn.test/${parts.join("")}`);
            const target = originTarget(ORIGIN, request.pathname, request.search);
            assert.ok(target !== undefined, request.pathname);
            const url = new URL(target);
            assert.equal(url.origin, "https://origin.example.com");
            assert.ok(url.pathname.startsWith("/legacy/"), target);
        }), { numRuns: 500 });
    });
});

describe("schema.sql", () => {
    it("splits into idempotent statements", () => {
        const statements = schemaStatements();
        assert.ok(statements.length >= 4);
        for (const s of statements) assert.match(s, /^CREATE (TABLE|INDEX) IF NOT EXISTS /);
    });
});
