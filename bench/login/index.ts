// npm run bench -- login
// Logins per second through the gateway vs Better Auth's in-process sign-in vs the raw scrypt rate,
// plus bearer session checks per second; written to docs/BENCHMARKS.md (section "login").
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createDatabase, createLogger } from '@mana/shared';
import { TEST_REDIS_URL, createTestDatabase, testBusEnv, uniqueName } from '@mana/shared/testing';
import { createAuth } from '../../auth-svc/src/auth/auth';
import { hashPassword, verifyPassword } from '../../auth-svc/src/auth/password-hash';
import { loadServiceConfig } from '../../auth-svc/src/config';
import * as tables from '../../auth-svc/src/db/schema';
import { load, machine, writeSection, type LoadResult } from '../lib';

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
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
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

const db = await createTestDatabase('mana_bench');
const children: ChildProcess[] = [];
try {
  const authPort = await freePort();
  const gatewayPort = await freePort();
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    DATABASE_URL: db.url,
    ...testBusEnv(uniqueName('bench')),
    BASE_URL: gatewayUrl,
    REQUIRE_EMAIL_VERIFICATION: 'false',
  };
  children.push(startProcess('auth-svc/src/server.ts', { ...env, AUTH_SVC_PORT: String(authPort) }));
  await ready(`http://127.0.0.1:${authPort}`);
  children.push(
    startProcess('gateway/src/server.ts', {
      ...env,
      PORT: String(gatewayPort),
      AUTH_SVC_URL: `http://127.0.0.1:${authPort}`,
      AUTH_JWKS_URL: `http://127.0.0.1:${authPort}/api/auth/jwks`,
      REDIS_URL: TEST_REDIS_URL,
      RATE_LIMIT_PREFIX: uniqueName('bench-rl'),
      RATE_LIMIT_POINTS: '100000000',
      RATE_LIMIT_AUTH_POINTS: '100000000',
    }),
  );
  await ready(gatewayUrl);

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

  // 2. Better Auth's own sign-in, in this process, against the same database.
  const config = loadServiceConfig(env);
  const logger = createLogger('bench', 'silent');
  const database = createDatabase({ url: db.url, schema: tables, max: 10 });
  const mailer = { send: async () => undefined, close: () => undefined };
  const auth = createAuth({ config, db: database.db, mailer, logger, onOutboxWrite: () => undefined });
  const inProcess = await rate(DURATION_S, concurrency, () => auth.api.signInEmail({ body: { email, password: PASSWORD } }));
  await database.close();

  // 3. Through the gateway: /api/v1/auth/login (scrypt + session + refresh token + JWT).
  const gatewayLogin: LoadResult = await load('POST /api/v1/auth/login (gateway)', {
    url: `${gatewayUrl}/api/v1/auth/login`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: loginBody,
    connections: concurrency,
    duration: DURATION_S,
  });

  // The machine is shared: measure the raw rate again after the logins and compare against the mean.
  const rawAfter = await rate(DURATION_S, concurrency, () => verifyPassword({ hash, password: PASSWORD }));
  const rawVerify = (rawBefore + rawAfter) / 2;

  // 4. Session checks with a bearer token.
  const sessionCheck: LoadResult = await load('GET /api/v1/auth/session (gateway)', {
    url: `${gatewayUrl}/api/v1/auth/session`,
    headers: { authorization: `Bearer ${first.accessToken}` },
    connections: 50,
    duration: DURATION_S,
  });
  const sessionDirect: LoadResult = await load('GET /api/v1/auth/session (auth-svc direct)', {
    url: `http://127.0.0.1:${authPort}/api/v1/auth/session`,
    headers: { authorization: `Bearer ${first.accessToken}` },
    connections: 50,
    duration: DURATION_S,
  });

  const cores = cpus().length;
  const pct = (x: number) => `${((x / rawVerify) * 100).toFixed(0)}%`;
  const load1 = loadavg()[0]?.toFixed(1) ?? '?';
  const md = `## Login (auth-svc)

${machine()}; ${DURATION_S} s per run, ${concurrency} concurrent logins, auth-svc and the gateway each in their own process
(\`tsx\`), the load generator in a third; PostgreSQL and RabbitMQ local. Better Auth's scrypt (N=16384, r=16, p=1) runs
on libuv's thread pool (${process.env.UV_THREADPOOL_SIZE ?? 4} threads). Load average at the end of the run: ${load1}
(anything above ~2 means other work shared the two cores and the ratios are noisy).

| what | per second | vs raw scrypt verify |
|---|---:|---:|
| raw scrypt verify (Better Auth \`verifyPassword\`), mean of a run before and after the logins (${rawBefore.toFixed(1)} / ${rawAfter.toFixed(1)}) | ${rawVerify.toFixed(1)} | 100% |
| raw scrypt hash (Better Auth \`hashPassword\`) | ${rawHash.toFixed(1)} | ${pct(rawHash)} |
| Better Auth in-process \`auth.api.signInEmail\` | ${inProcess.toFixed(1)} | ${pct(inProcess)} |
| \`POST /api/v1/auth/login\` through the gateway | ${gatewayLogin.rps.toFixed(1)} | ${pct(gatewayLogin.rps)} |

Login through the gateway: p50 ${gatewayLogin.p50} ms, p99 ${gatewayLogin.p99} ms, errors ${gatewayLogin.errors}, non-2xx ${gatewayLogin.non2xx}.
Target: logins ≥ 90% of the raw hash rate → **${gatewayLogin.rps >= 0.9 * rawVerify ? 'met' : 'not met'}** (${pct(gatewayLogin.rps)}).

| session checks (bearer JWT, 50 connections) | req/s | per core (${cores}) | p50 ms | p99 ms | errors | non-2xx |
|---|---:|---:|---:|---:|---:|---:|
${[sessionCheck, sessionDirect]
  .map((r) => `| ${r.name} | ${r.rps.toFixed(0)} | ${(r.rps / cores).toFixed(0)} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.non2xx} |`)
  .join('\n')}

Target: ≥ 1,000 session checks/s per core → **${sessionCheck.rps / cores >= 1000 ? 'met' : 'not met'}** through the gateway.
Each check verifies the EdDSA signature (cached per token after the first time) and reads the session and user rows
(one indexed join), so a revoked session is refused by auth-svc itself.
`;
  writeSection('login', md);
  process.stdout.write(md);
} finally {
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1500));
  await db.drop();
}
