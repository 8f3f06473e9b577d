/**
 * The V8 flags every service process runs with (the Dockerfile's CMD, the Kubernetes commands and the test and
 * benchmark process starter pass the same; test/deploy pins them).
 *
 * The young generation is fixed at its full size from the start: V8 starts a semi-space at 4 MB and doubles it as
 * allocation goes on, up to 16 MB, so a quiet service's RSS grew by ~24 MB over its first minutes of traffic (a
 * step, then flat) — growth that looked like a leak in the soak and that a memory limit must allow for anyway.
 * Pinning both ends also keeps the size when a newer Node changes its default.
 */
export const SERVICE_NODE_FLAGS = ['--min-semi-space-size=16', '--max-semi-space-size=16'] as const;
