import * as pulumi from "@pulumi/pulumi";

/**
 * An error that is the user's to fix (bad config, a source that cannot be listed): the CLI shows its message and no
 * stack. Its stack holds no frames either: `@pulumi/pulumi` 3.248 also formats every program error with
 * `util.inspect(err, { colors: true })` for its trace span, and Node 20's inspect of a stack with frames under
 * `node_modules/@pulumi/` grows a string until it fails with "Invalid string length" (pulumi/pulumi#20567, #21326):
 * a stack-config error took 33 s to show in `pulumi preview`, nearly all of it garbage collection.
 */
export function userError(message: string): pulumi.RunError {
    const error = new pulumi.RunError(message);
    error.stack = `${error.name}: ${error.message}`;
    return error;
}
