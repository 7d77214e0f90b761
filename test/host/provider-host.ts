import { ChildProcess, spawn } from "child_process";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { ResourceProviderClient } from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as pb from "@pulumi/pulumi/proto/provider_pb";
// eslint-disable-next-line @typescript-eslint/no-var-requires
const statusproto = require("@pulumi/pulumi/proto/status_pb");

/** The project root: the host runs here, as `pulumi up` runs it in the program directory. */
export const PROJECT_ROOT = path.resolve(__dirname, "..", "..");
const HOST_ENTRY = path.join(PROJECT_ROOT, "node_modules", "@pulumi", "pulumi", "cmd", "dynamic-provider");

export type Props = Record<string, unknown>;

export interface CheckResult { inputs: Props; failures: { property: string; reason: string }[] }
export interface DiffResult { changes: "none" | "some" | "unknown"; replaces: string[]; deleteBeforeReplace: boolean }
export interface ReadResult { id: string; properties: Props; inputs?: Props }

/**
 * One real `@pulumi/pulumi` dynamic provider host process (`node .../cmd/dynamic-provider x`, cwd = project root),
 * driven over gRPC exactly as the engine does. Values cross as plain JS objects (google.protobuf.Struct).
 */
export interface ProviderHost {
    readonly port: number;
    readonly process: ChildProcess;
    /** Everything the host printed so far (stdout + stderr), e.g. to scan for leaked secrets. */
    output(): string;
    configure(args: Props): Promise<void>;
    check(urn: string, olds: Props, news: Props): Promise<CheckResult>;
    diff(id: string, urn: string, olds: Props, news: Props, oldInputs?: Props): Promise<DiffResult>;
    create(urn: string, properties: Props): Promise<{ id: string; properties: Props }>;
    read(id: string, urn: string, properties: Props, inputs?: Props): Promise<ReadResult>;
    update(id: string, urn: string, olds: Props, news: Props, oldInputs?: Props): Promise<Props>;
    delete(id: string, urn: string, properties: Props): Promise<void>;
    /** SIGKILL (a crash) or SIGTERM; resolves once the process is gone. */
    kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface ProviderHostOptions {
    env?: NodeJS.ProcessEnv;
    /** Extra node flags for the host process, e.g. ["--max-old-space-size=512"]. */
    nodeArgs?: string[];
}

// google-protobuf's Struct rejects `undefined`; the engine never sends it either.
function toStruct(value: Props): Struct {
    return Struct.fromJavaScript(JSON.parse(JSON.stringify(value)) as Parameters<typeof Struct.fromJavaScript>[0]);
}

function fromStruct(s: Struct | undefined): Props {
    return (s?.toJavaScript() ?? {}) as Props;
}

/**
 * A create/update that failed with partial state (the provider threw `{ id, properties, reasons }`): the engine
 * stores `id` and `properties` with `reasons` as init errors.
 */
export class ResourceInitFailure extends Error {
    constructor(message: string, readonly id: string, readonly properties: Props, readonly reasons: string[]) {
        super(message);
    }
}

function initFailure(err: grpc.ServiceError): ResourceInitFailure | undefined {
    const bin = err.metadata?.get("grpc-status-details-bin")?.[0];
    if (!bin) return undefined;
    const status = statusproto.Status.deserializeBinary(new Uint8Array(bin as Buffer));
    for (const any of status.getDetailsList()) {
        if (!String(any.getTypeUrl()).endsWith("pulumirpc.ErrorResourceInitFailed")) continue;
        const detail = pb.ErrorResourceInitFailed.deserializeBinary(any.getValue_asU8());
        return new ResourceInitFailure(err.details || err.message, detail.getId(), fromStruct(detail.getProperties()), detail.getReasonsList());
    }
    return undefined;
}

function unary<Req, Res>(
    client: ResourceProviderClient,
    method: string,
    req: Req,
): Promise<Res> {
    return new Promise((resolve, reject) => {
        const fn = (client as unknown as Record<string, Function>)[method].bind(client);
        fn(req, (err: grpc.ServiceError | null, res: Res) => (err ? reject(initFailure(err) ?? new Error(err.details || err.message)) : resolve(res)));
    });
}

/** Starts the dynamic provider host from `node_modules/@pulumi/pulumi` and connects a gRPC client to it. */
export async function startProviderHost(opts: ProviderHostOptions = {}): Promise<ProviderHost> {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), HOST_ENTRY, "x"], {
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...opts.env },
        stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`provider host printed no port in 30 s: ${out}`)), 30_000);
        child.stdout!.on("data", (chunk: Buffer) => {
            out += chunk.toString();
            const first = out.split("\n")[0];
            if (out.includes("\n") && /^\d+$/.test(first.trim())) {
                clearTimeout(timer);
                resolve(Number(first.trim()));
            }
        });
        child.stderr!.on("data", (chunk: Buffer) => (out += chunk.toString()));
        child.once("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`provider host exited (${code}) before printing its port: ${out}`));
        });
    });
    const client = new ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());

    return {
        port,
        process: child,
        output: () => out,
        async configure(args) {
            const req = new pb.ConfigureRequest();
            req.setArgs(toStruct(args));
            req.setAcceptsecrets(true);
            await unary(client, "configure", req);
        },
        async check(urn, olds, news) {
            const req = new pb.CheckRequest();
            req.setUrn(urn);
            req.setOlds(toStruct(olds));
            req.setNews(toStruct(news));
            const res = await unary<pb.CheckRequest, pb.CheckResponse>(client, "check", req);
            return {
                inputs: fromStruct(res.getInputs()),
                failures: res.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() })),
            };
        },
        async diff(id, urn, olds, news, oldInputs) {
            const req = new pb.DiffRequest();
            req.setId(id);
            req.setUrn(urn);
            req.setOlds(toStruct(olds));
            req.setNews(toStruct(news));
            if (oldInputs) req.setOldInputs(toStruct(oldInputs));
            const res = await unary<pb.DiffRequest, pb.DiffResponse>(client, "diff", req);
            const kinds = pb.DiffResponse.DiffChanges;
            const changes = res.getChanges() === kinds.DIFF_SOME ? "some" : res.getChanges() === kinds.DIFF_NONE ? "none" : "unknown";
            return { changes, replaces: res.getReplacesList(), deleteBeforeReplace: res.getDeletebeforereplace() };
        },
        async create(urn, properties) {
            const req = new pb.CreateRequest();
            req.setUrn(urn);
            req.setProperties(toStruct(properties));
            const res = await unary<pb.CreateRequest, pb.CreateResponse>(client, "create", req);
            return { id: res.getId(), properties: fromStruct(res.getProperties()) };
        },
        async read(id, urn, properties, inputs) {
            const req = new pb.ReadRequest();
            req.setId(id);
            req.setUrn(urn);
            req.setProperties(toStruct(properties));
            if (inputs) req.setInputs(toStruct(inputs));
            const res = await unary<pb.ReadRequest, pb.ReadResponse>(client, "read", req);
            return { id: res.getId(), properties: fromStruct(res.getProperties()), inputs: res.getInputs() ? fromStruct(res.getInputs()) : undefined };
        },
        async update(id, urn, olds, news, oldInputs) {
            const req = new pb.UpdateRequest();
            req.setId(id);
            req.setUrn(urn);
            req.setOlds(toStruct(olds));
            req.setNews(toStruct(news));
            if (oldInputs) req.setOldInputs(toStruct(oldInputs));
            const res = await unary<pb.UpdateRequest, pb.UpdateResponse>(client, "update", req);
            return fromStruct(res.getProperties());
        },
        async delete(id, urn, properties) {
            const req = new pb.DeleteRequest();
            req.setId(id);
            req.setUrn(urn);
            req.setProperties(toStruct(properties));
            await unary<pb.DeleteRequest, Empty>(client, "delete", req);
        },
        async kill(signal = "SIGTERM") {
            client.close();
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            await exited;
        },
    };
}
