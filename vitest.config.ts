import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // test/chaos/ injects faults (broker cut, services stopped): `npm run test:chaos`, vitest.chaos.config.ts.
    exclude: ['**/node_modules/**', 'test/chaos/**'],
    pool: 'forks',
    // Tags the run's names and fails the run if it leaves queues, exchanges or databases behind.
    globalSetup: ['test/helpers/global-setup.ts'],
    // Integration tests start real servers against the shared PostgreSQL and RabbitMQ; each file isolates
    // itself (own database, own exchange/queue names), so files may run side by side.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent', NODE_ENV: 'test' },
  },
});
