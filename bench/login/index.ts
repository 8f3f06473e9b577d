// npm run bench -- login
// Logins per second through the gateway vs Better Auth's in-process sign-in vs the raw scrypt rate, bearer session
// checks per second, the SQL statements of one login and the CPU each process spends per request; written to
// docs/BENCHMARKS.md (section "login").
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createDatabase, createLogger } from '@mana/shared';
import { TEST_REDIS_URL, createTestDatabase, deleteRedisKeys, deleteTestBus, testBusEnv, testPool, uniqueName } from '@mana/shared/testing';
import { createAuth } from '../../auth-svc/src/auth/auth';
import { hashPassword, verifyPassword } from '../../auth-svc/src/auth/password-hash';
import { loadServiceConfig } from '../../auth-svc/src/config';
import * as tables from '../../auth-svc/src/db/schema';
import { load, writeSection, type LoadResult } from '../lib';
import { cpuMeter } from './cpu';
import { report } from './report';
import { countStatements } from './statements';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const PASSWORD = 'Bench Marked Passphrase 2024';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function startProcess(script: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function ready(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not become ready`);
}

/** Runs `op` from `concurrency` loops for `seconds`; returns completed operations per second. */
async function rate(seconds: number, concurrency: number, op: () => Promise<unknown>): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        await op();
        done += 1;
      }
    }),
  );
  return done / ((Date.now() - started) / 1000);
}

const loadBefore = loadavg()[0] ?? NaN;
const db = await createTestDatabase('mana_bench');
const bus = testBusEnv(uniqueName('bench'));
const rateLimitPrefix = uniqueName('bench-rl');
const sql = testPool(db.url, 1);
const children: ChildProcess[] = [];
try {
  const authPort = await freePort();
  const gatewayPort = await freePort();
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    DATABASE_URL: db.url,
    ...bus,
    BASE_URL: gatewayUrl,
    REQUIRE_EMAIL_VERIFICATION: 'false',
  };
  const auth = startProcess('auth-svc/src/server.ts', { ...env, AUTH_SVC_PORT: String(authPort) });
  children.push(auth);
  await ready(`http://127.0.0.1:${authPort}`);
  const gateway = startProcess('gateway/src/server.ts', {
    ...env,
    PORT: String(gatewayPort),
    AUTH_SVC_URL: `http://127.0.0.1:${authPort}`,
    AUTH_JWKS_URL: `http://127.0.0.1:${authPort}/api/auth/jwks`,
    REDIS_URL: TEST_REDIS_URL,
    RATE_LIMIT_PREFIX: rateLimitPrefix,
    RATE_LIMIT_POINTS: '100000000',
    RATE_LIMIT_AUTH_POINTS: '100000000',
  });
  children.push(gateway);
  await ready(gatewayUrl);
  const meter = () => cpuMeter({ authPid: auth.pid, gatewayPid: gateway.pid, pool: sql, database: db.name });

  const email = 'bench@example.com';
  const reg = await fetch(`${gatewayUrl}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD, name: 'Bench' }),
  });
  if (reg.status !== 201) throw new Error(`register: ${reg.status}`);
  const loginBody = JSON.stringify({ email, password: PASSWORD });
  const first = (await (
    await fetch(`${gatewayUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: loginBody })
  ).json()) as { accessToken: string };

  // 1. Raw scrypt (Better Auth's hash function) on this machine, same concurrency as the HTTP runs.
  const concurrency = 8;
  const hash = await hashPassword(PASSWORD);
  const rawBefore = await rate(DURATION_S, concurrency, () => verifyPassword({ hash, password: PASSWORD }));
  const rawHash = await rate(Math.max(3, DURATION_S / 2), concurrency, () => hashPassword(PASSWORD));

  // 2. Better Auth's own sign-in, in this process, against the same database (every plugin hook included).
  const config = loadServiceConfig(env);
  const database = createDatabase({ url: db.url, schema: tables, max: 10 });
  const inProcessAuth = createAuth({
    config,
    db: database.db,
    mailer: { send: async () => undefined, close: () => undefined },
    logger: createLogger('bench', 'silent'),
    onOutboxWrite: () => undefined,
  });
  const inProcess = await rate(DURATION_S, concurrency, () => inProcessAuth.api.signInEmail({ body: { email, password: PASSWORD } }));
  await database.close();

  // 3. Through the gateway: /api/v1/auth/login (scrypt + session + refresh token + JWT), a short warm-up first.
  const loginTarget = {
    url: `${gatewayUrl}/api/v1/auth/login`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body: loginBody,
    connections: concurrency,
  };
  await load('warm-up', { ...loginTarget, duration: 2 });
  const loginCpu = await meter();
  const gatewayLogin: LoadResult = await load('POST /api/v1/auth/login (gateway)', { ...loginTarget, duration: DURATION_S });
  const loginCpuPerOp = await loginCpu(gatewayLogin.rps * DURATION_S);

  // The machine is shared: measure the raw rate again after the logins and compare against the mean.
  const rawAfter = await rate(DURATION_S, concurrency, () => verifyPassword({ hash, password: PASSWORD }));

  // 4. Session checks with a bearer token.
  const sessionTarget = (url: string) => ({ url, headers: { authorization: `Bearer ${first.accessToken}` }, connections: 50 });
  await load('warm-up', { ...sessionTarget(`${gatewayUrl}/api/v1/auth/session`), duration: 2 });
  const checkCpu = await meter();
  const sessionCheck: LoadResult = await load('GET /api/v1/auth/session (gateway)', {
    ...sessionTarget(`${gatewayUrl}/api/v1/auth/session`),
    duration: DURATION_S,
  });
  const checkCpuPerOp = await checkCpu(sessionCheck.rps * DURATION_S);
  const directCpu = await meter();
  const sessionDirect: LoadResult = await load('GET /api/v1/auth/session (auth-svc direct)', {
    ...sessionTarget(`http://127.0.0.1:${authPort}/api/v1/auth/session`),
    duration: DURATION_S,
  });
  const directCpuPerOp = await directCpu(sessionDirect.rps * DURATION_S);

  // 5. The statements of one login and one session check (an auth-svc of its own in this process, counted).
  const statements = await countStatements(env);

  const md = report({
    durationS: DURATION_S,
    concurrency,
    cores: cpus().length,
    load: { before: loadBefore, after: loadavg()[0] ?? NaN },
    raw: { before: rawBefore, after: rawAfter, hash: rawHash },
    inProcess,
    gatewayLogin,
    loginCpu: loginCpuPerOp,
    sessionCheck,
    sessionDirect,
    checkCpu: checkCpuPerOp,
    directCpu: directCpuPerOp,
    statements,
  });
  writeSection('login', md);
  process.stdout.write(md);
} finally {
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1500));
  await sql.end();
  await deleteTestBus(bus, ['auth']).catch(() => undefined);
  await deleteRedisKeys(rateLimitPrefix).catch(() => undefined);
  await db.drop();
}
