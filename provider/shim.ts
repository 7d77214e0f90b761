import * as pulumi from "@pulumi/pulumi";

/**
 * The object handed to `pulumi.dynamic.Resource`. Pulumi serializes it into every resource's state and runs that
 * frozen copy on delete and refresh, so it holds nothing but a module name: each method loads the real
 * implementation (`provider/<moduleName>.ts`, exporting `provider`) from the project directory at run time.
 * The dynamic provider host runs plain `node` with the project root as its working directory, hence the
 * transpile-only ts-node registration when `.ts` files are not loadable yet.
 */
export function providerShim(moduleName: string): pulumi.dynamic.ResourceProvider {
    const load = (): pulumi.dynamic.ResourceProvider => {
        const path = require("path");
        if (!require.extensions[".ts"]) {
            require("ts-node").register({ transpileOnly: true, project: path.join(process.cwd(), "tsconfig.json") });
        }
        return require(path.join(process.cwd(), "provider", moduleName)).provider;
    };
    return {
        configure: (req) => load().configure!(req),
        check: (olds, news) => load().check!(olds, news),
        diff: (id, olds, news) => load().diff!(id, olds, news),
        create: (inputs) => load().create(inputs),
        read: (id, props) => load().read!(id, props),
        update: (id, olds, news) => load().update!(id, olds, news),
        delete: (id, props) => load().delete!(id, props),
    };
}
