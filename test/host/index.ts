// The real-host harness: start the dynamic provider host, drive it like the engine, capture what the program sends.
export { PROJECT_ROOT, ResourceInitFailure, startProviderHost } from "./provider-host";
export type { CheckResult, DiffResult, ProviderHost, ProviderHostOptions, Props, ReadResult } from "./provider-host";
export { EngineDriver, isSecret, secret, SECRET_SIG, SECRET_SIG_KEY, UNKNOWN_VALUE, unwrapSecrets } from "./engine-driver";
export type { DesiredResource, ResourceState, RunResult, StepError, StepOp, StepRecord } from "./engine-driver";
export { captureBatchRegistration, captureImageRegistration, serializedImageProvider } from "./serialized-provider";
export type { CapturedRegistration } from "./serialized-provider";
export { desiredImage, IMAGE_TYPE, imageUrn } from "./image-resources";
