import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type CryptoKey } from 'jose';
import { Redis } from 'ioredis';
import pg from 'pg';
import { declaredQueues, deleteTopology, retryExchangesOf, topologyQueues } from '../bus/amqp-topology';
import { SERVICE_DATABASE_URL_VARS, SERVICE_SCHEMAS, provisionServiceRoles } from '../db/service-roles';

/** The local PostgreSQL every developer and CI machine runs (trust auth). */
export const TEST_PG_ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A name no other test (or other developer's run) uses. Under `npm test` the global setup sets
 * `MANA_TEST_RUN`, so every name of one run carries the run's tag and its teardown can find what leaked.
 */
export function uniqueName(prefix = 't'): string {
  const run = process.env.MANA_TEST_RUN ? `${process.env.MANA_TEST_RUN}_` : '';
  return `${prefix}_${run}${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export interface TestDatabase {
  name: string;
  url: string;
  drop: () => Promise<void>;
}

/**
 * A pool for a test's own queries. An idle client that the file's teardown kills (`DROP DATABASE … WITH (FORCE)`
 * right after `pool.end()`, before its socket closed) makes pg-pool emit 'error' on the pool: without a
 * listener that is an uncaught exception that fails the whole run.
 */
export function testPool(url: string, max = 2): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', () => undefined);
  return pool;
}

/** A fresh database for one test file: every schema and migration table of its own. */
export async function createTestDatabase(prefix = 'mana_test'): Promise<TestDatabase> {
  const name = uniqueName(prefix).toLowerCase();
  const admin = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * Each service's own login role on a test database (least privilege, as in production): the environment
 * `AUTH_DATABASE_URL`, `VAULT_DATABASE_URL`, … (and `GATEWAY_DATABASE_URL`) to start the services with.
 */
export async function serviceDatabaseEnv(db: TestDatabase): Promise<Record<string, string>> {
  const urls = await provisionServiceRoles({ adminUrl: db.url });
  return Object.fromEntries(SERVICE_SCHEMAS.map((schema) => [SERVICE_DATABASE_URL_VARS[schema], urls[schema]]));
}

/** Own exchange and queue names for one test file on the shared broker. */
export function testBusEnv(prefix = uniqueName('t')): { AMQP_URL: string; AMQP_EXCHANGE: string; AMQP_QUEUE_PREFIX: string } {
  return { AMQP_URL: TEST_AMQP_URL, AMQP_EXCHANGE: `${prefix}.events`, AMQP_QUEUE_PREFIX: `${prefix}.` };
}

export interface TestIssuer {
  jwksUrl: string;
  issuer: string;
  audience: string;
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** Signs an access token with the claims given (defaults fill the rest). */
  sign: (claims?: Record<string, unknown>, opts?: { expiresIn?: string | number; kid?: string }) => Promise<string>;
  close: () => Promise<void>;
}

/**
 * A stand-in for auth-svc's JWKS in unit/integration tests of verifiers (gateway, services):
 * a real Ed25519 key pair served over real HTTP.
 */
export async function startTestIssuer(opts: { issuer?: string; audience?: string } = {}): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const kid = randomBytes(8).toString('hex');
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  const server: Server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [publicJwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const issuer = opts.issuer ?? 'http://localhost:3001';
  const audience = opts.audience ?? 'mana';
  return {
    jwksUrl: `http://127.0.0.1:${port}/jwks`,
    issuer,
    audience,
    kid,
    privateKey,
    publicJwk,
    sign: async (claims = {}, o = {}) => {
      const body = { sub: 'user-1', email: 'user@example.com', role: 'user', sid: 'session-1', ...claims };
      return new SignJWT(body)
        .setProtectedHeader({ alg: 'EdDSA', kid: o.kid ?? kid })
        .setIssuedAt()
        .setIssuer(issuer)
        .setAudience(audience)
        .setExpirationTime(o.expiresIn ?? '15m')
        .sign(privateKey);
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Where this process's next port comes from in its block (a port is handed out again only after the block wrapped). */
let portCursor = -1;

/**
 * The first port of the kernel's ephemeral range (Linux `ip_local_port_range`, 32768 by default): the ports it
 * gives to `listen(0)` and to every outgoing connection's local end.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 12_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

async function bindable(port: number): Promise<boolean> {
  const srv = createServer();
  // Every address, as the services listen: a port taken on any of them is not free.
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, () => resolve(true));
  });
  if (ok) await new Promise<void>((r) => srv.close(() => r()));
  return ok;
}

/**
 * A TCP port to start a server on later (a service whose URL others must know before it runs). Not one the OS picks:
 * a port from the ephemeral range, released and taken again a moment later, can meanwhile become the local end of
 * any outgoing connection (a database or broker connection of a test running beside), and the server then fails
 * with EADDRINUSE. So it comes from below that range, from a block of its own per vitest worker
 * (`VITEST_POOL_ID`; other processes by pid), not twice in one process until its block wrapped, and only if it
 * binds now.
 */
export async function freePort(): Promise<number> {
  const low = 10_000;
  const blockSize = 400;
  const blocks = Math.floor((ephemeralLow() - low) / blockSize);
  const pool = Number(process.env.VITEST_POOL_ID);
  const block = Number.isInteger(pool) && pool > 0 ? pool % blocks : process.pid % blocks;
  if (portCursor < 0) portCursor = process.pid % blockSize;
  for (let tries = 0; tries < blockSize; tries++) {
    const port = low + block * blockSize + (portCursor++ % blockSize);
    if (await bindable(port)) return port;
  }
  throw new Error(`freePort: no free port in ${low + block * blockSize}–${low + (block + 1) * blockSize - 1}`);
}

/**
 * Backends of the pool's database waiting for a lock (a row, a transaction, an advisory lock), only those whose
 * statement matches `queryPattern` (ILIKE) when given: how a test sees that the interleaving it forces has happened,
 * instead of sleeping for it.
 */
export async function lockWaiters(pool: pg.Pool | pg.ClientBase, queryPattern?: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where not l.granted and a.datname = current_database() and ($1::text is null or a.query ilike $1)`,
    [queryPattern ?? null],
  );
  return rows[0]?.n ?? 0;
}

/** Polls `fn` until it returns truthy (no wall-clock assertions, only a give-up limit). */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `eventually: gave up after ${timeoutMs} ms${lastErr ? `: ${lastErr instanceof Error ? String(lastErr) : JSON.stringify(lastErr)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
export * from './tcp-proxy';
export * from './express-routes';
export * from './service-process';

/**
 * Deletes what services declared on the broker under a `testBusEnv()` prefix: the exchange and its
 * dead-letter exchange, and for each logical queue name (e.g. 'credits') the queue, its `.dlq`, its
 * `.retry.N` queues and its `.retry` exchange. Call in afterAll, after the services are closed.
 */
export async function deleteTestBus(
  env: { AMQP_URL: string; AMQP_EXCHANGE: string; AMQP_QUEUE_PREFIX: string },
  queues: string[] = [],
  retries = 3,
): Promise<void> {
  const listed = queues.flatMap((q) =>
    topologyQueues({ queue: `${env.AMQP_QUEUE_PREFIX}${q}`, retryDelaysMs: Array.from({ length: retries }, () => 0) }),
  );
  // Plus every queue a bus of this process declared on the exchange, listed or not.
  const names = [...new Set([...listed, ...declaredQueues(env.AMQP_EXCHANGE)])];
  await deleteTopology(env.AMQP_URL, names, [env.AMQP_EXCHANGE, `${env.AMQP_EXCHANGE}.dlx`, ...retryExchangesOf(names)]);
}

/** Deletes queues and exchanges by name (the test run's leak sweep). */
export async function deleteBrokerObjects(queues: string[], exchanges: string[], url = TEST_AMQP_URL): Promise<void> {
  await deleteTopology(url, queues, exchanges);
}

/** Deletes the keys a test file or benchmark left in Redis under `prefix` (rate-limit counters). */
export async function deleteRedisKeys(prefix: string, url = TEST_REDIS_URL): Promise<void> {
  const redis = new Redis(url);
  try {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}
