import { defineConfig } from 'vitest/config';

/**
 * `npm run test:chaos`: faults injected into a running system (two instances of every service behind the
 * gateway) — broker outage, auth-svc down, database connections terminated, Redis down. Not part of
 * `npm test`; `.ci/run` runs it after the main suite. One file at a time: each one breaks shared things
 * (a proxy in front of the broker, connections on the shared PostgreSQL) for its own stack only, but the
 * timings of a fault are easier to read without a neighbour competing for the two cores.
 */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    pool: 'forks',
    globalSetup: ['test/helpers/global-setup.ts'],
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent', NODE_ENV: 'test' },
  },
});
