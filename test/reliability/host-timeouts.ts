// Preloaded into the provider host (`node -r`) by the reliability tests: the provider has no config key or input for
// its per-request timeout yet, so latency spikes "beyond the request timeout" would otherwise need 60 s each.
// SOURCING_KIT_TEST_TIMEOUT_MS sets provider/http.ts's default timeouts for every client the host builds.
const timeoutMs = Number(process.env.SOURCING_KIT_TEST_TIMEOUT_MS);
if (Number.isFinite(timeoutMs) && timeoutMs > 0) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const http = require("../../provider/http") as { DEFAULT_TIMEOUT_MS: number; DEFAULT_UPLOAD_TIMEOUT_MS: number };
    http.DEFAULT_TIMEOUT_MS = timeoutMs;
    http.DEFAULT_UPLOAD_TIMEOUT_MS = timeoutMs;
}
