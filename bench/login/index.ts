// npm run bench -- login
// Logins per second through the gateway vs Better Auth's in-process sign-in vs the raw scrypt rate, bearer session
// checks per second, the SQL statements of one login and the CPU each process spends per request; written to
// docs/BENCHMARKS.md (section "login").
import type { ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createDatabase, createLogger } from '@mana/shared';
import {
  TEST_REDIS_URL,
  createTestDatabase,
  deleteRedisKeys,
  freePort,
  startServiceProcess,
  deleteTestBus,
  testBusEnv,
  testPool,
  uniqueName,
} from '@mana/shared/testing';
import { createAuth } from '../../auth-svc/src/auth/auth';
import { hashPassword, verifyPassword } from '../../auth-svc/src/auth/password-hash';
import { loadServiceConfig } from '../../auth-svc/src/config';
import * as tables from '../../auth-svc/src/db/schema';
import { load, writeSection, type LoadResult } from '../lib';
import { cpuMeter, idleCpuPerSecond, type CpuPerOp } from './cpu';
import { report } from './report';
import { countStatements } from './statements';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const PASSWORD = 'Bench Marked Passphrase 2024';
/** Turns of raw verify / in-process sign-in / gateway login, and the seconds of each. */
const SLICES = Number(process.env.BENCH_TURNS ?? 5);
const TURN_S = Number(process.env.BENCH_TURN ?? 3);
/**
 * Seconds of logins (and of in-process sign-ins) before anything is measured. A cold auth-svc keeps compiling its
 * login path with TurboFan for most of a minute (V8's compiler threads: ~2.4 ms per login over the first 40 s, ~1.5
 * after a minute), and a process that has just started is not what a login meets in service.
 */
const WARMUP_S = Number(process.env.BENCH_WARMUP ?? 45);

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** CPU ms per operation over several measurements. */
const perOp = (parts: Array<{ ms: number; ops: number }>) => parts.reduce((a, p) => a + p.ms, 0) / parts.reduce((a, p) => a + p.ops, 0);

/** Runs `work` and returns its result with the CPU ms this process spent meanwhile (all its threads). */
async function withOwnCpu<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const before = process.cpuUsage();
  const result = await work();
  const used = process.cpuUsage(before);
  return { result, ms: (used.user + used.system) / 1000 };
}

/** One result of the login turns: mean rate, mean p50 and mean, worst p99, errors summed. */
function combine(turns: LoadResult[]): LoadResult {
  return {
    name: turns[0]?.name ?? '',
    rps: mean(turns.map((t) => t.rps)),
    p50: Math.round(mean(turns.map((t) => t.p50))),
    p99: Math.max(...turns.map((t) => t.p99)),
    mean: mean(turns.map((t) => t.mean)),
    errors: turns.reduce((a, t) => a + t.errors, 0),
    non2xx: turns.reduce((a, t) => a + t.non2xx, 0),
  };
}

/** CPU per operation over several measurements, weighted by their operations. */
function weighted(parts: Array<{ cpu: CpuPerOp; ops: number }>): CpuPerOp {
  const ops = parts.reduce((a, p) => a + p.ops, 0);
  const sum = (k: keyof CpuPerOp) => parts.reduce((a, p) => a + p.cpu[k] * p.ops, 0) / ops;
  return { authLoop: sum('authLoop'), authTotal: sum('authTotal'), gateway: sum('gateway'), postgres: sum('postgres') };
}

/**
 * Runs `op` from `concurrency` loops for `seconds`; returns completed operations per second. An operation started
 * before the end is waited for and counted, and the time includes it (the same for every target measured this way).
 */
async function rate(seconds: number, concurrency: number, op: () => Promise<unknown>): Promise<number> {
  return (await timed(seconds, concurrency, op)).rps;
}

async function timed(seconds: number, concurrency: number, op: () => Promise<unknown>): Promise<{ rps: number; latencies: number[] }> {
  const end = Date.now() + seconds * 1000;
  const latencies: number[] = [];
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const t = performance.now();
        await op();
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { rps: latencies.length / ((Date.now() - started) / 1000), latencies };
}

/**
 * Logins through the gateway from `concurrency` loops, counted like `rate` (autocannon drops the requests still in
 * flight at the end: with logins of a second or more and turns of a few seconds that would undercount them). The
 * client is node:http with a keep-alive agent, not fetch: it shares the two cores with what it measures, and fetch
 * spent ~2.5 ms of CPU per login here against well under 1 ms for node:http.
 */
async function loginTurn(seconds: number, concurrency: number, url: string, body: string): Promise<LoadResult & { ops: number }> {
  let errors = 0;
  let non2xx = 0;
  const target = new URL(url);
  const payload = Buffer.from(body);
  const post = () =>
    new Promise<void>((resolve) => {
      const req = request(
        {
          agent: loginAgent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': payload.length },
        },
        (res) => {
          if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) non2xx += 1;
          res.resume();
          res.on('end', resolve);
          res.on('error', () => ((errors += 1), resolve()));
        },
      );
      req.on('error', () => ((errors += 1), resolve()));
      req.end(payload);
    });
  const { rps, latencies } = await timed(seconds, concurrency, post);
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN);
  const name = 'POST /api/v1/auth/login (gateway)';
  return { name, rps, p50: at(0.5), p99: at(0.99), mean: mean(latencies), errors, non2xx, ops: latencies.length };
}
const loginAgent = new Agent({ keepAlive: true, maxSockets: 64 });

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
  const start = (name: string, script: string, port: number, extra: Record<string, string>) =>
    startServiceProcess({ name, script, cwd: ROOT, port, env: { ...env, ...extra }, onSpawn: (c) => children.push(c) });
  const auth = (await start('auth-svc', 'auth-svc/src/server.ts', authPort, { AUTH_SVC_PORT: String(authPort) })).child;
  const gateway = (
    await start('gateway', 'gateway/src/server.ts', gatewayPort, {
      PORT: String(gatewayPort),
      AUTH_SVC_URL: `http://127.0.0.1:${authPort}`,
      AUTH_JWKS_URL: `http://127.0.0.1:${authPort}/api/auth/jwks`,
      REDIS_URL: TEST_REDIS_URL,
      RATE_LIMIT_PREFIX: rateLimitPrefix,
      RATE_LIMIT_POINTS: '100000000',
      RATE_LIMIT_AUTH_POINTS: '100000000',
    })
  ).child;
  const sources = { authPid: auth.pid, gatewayPid: gateway.pid, pool: sql, database: db.name };

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

  // 1–3 run in turns — raw scrypt verify, Better Auth's sign-in in this process, the login through the gateway, and
  // again — so that load from elsewhere drifting during the run weighs on all three alike (same concurrency).
  const concurrency = 8;
  const slice = TURN_S;
  const hash = await hashPassword(PASSWORD);
  const rawHash = await rate(slice, concurrency, () => hashPassword(PASSWORD));
  const config = loadServiceConfig(env);
  const database = createDatabase({ url: db.url, schema: tables, max: 10 });
  const inProcessAuth = createAuth({
    config,
    db: database.db,
    mailer: { send: async () => undefined, close: () => undefined },
    logger: createLogger('bench', 'silent'),
    onOutboxWrite: () => undefined,
  });
  const loginUrl = `${gatewayUrl}/api/v1/auth/login`;
  // Warm-up to the steady state (see WARMUP_S); the in-process sign-in warms this process's own JIT.
  await loginTurn(WARMUP_S, concurrency, loginUrl, loginBody);
  await rate(Math.max(2, WARMUP_S / 5), concurrency, () => inProcessAuth.api.signInEmail({ body: { email, password: PASSWORD } }));
  // What the processes spend when idle (relay poll, metrics), taken out of the CPU per request below.
  const idle = await idleCpuPerSecond(sources);
  const meter = () => cpuMeter(sources, idle);
  const raw: number[] = [];
  const rawCpu: Array<{ ms: number; ops: number }> = [];
  const inProcess: number[] = [];
  const logins: LoadResult[] = [];
  const loginCpus: Array<{ cpu: CpuPerOp; ops: number }> = [];
  const clientCpu: Array<{ ms: number; ops: number }> = [];
  for (let i = 0; i < SLICES; i++) {
    // This process does nothing else meanwhile: its CPU per verify is what scrypt itself costs.
    const verifies = await withOwnCpu(() => timed(slice, concurrency, () => verifyPassword({ hash, password: PASSWORD })));
    raw.push(verifies.result.rps);
    rawCpu.push({ ms: verifies.ms, ops: verifies.result.latencies.length });
    inProcess.push(await rate(slice, concurrency, () => inProcessAuth.api.signInEmail({ body: { email, password: PASSWORD } })));
    const cpu = await meter();
    const { result: turn, ms: clientMs } = await withOwnCpu(() => loginTurn(slice, concurrency, loginUrl, loginBody));
    clientCpu.push({ ms: clientMs, ops: turn.ops });
    loginCpus.push({ cpu: await cpu(turn.ops), ops: turn.ops });
    logins.push(turn);
  }
  await database.close();
  const gatewayLogin = combine(logins);
  const loginCpuPerOp = weighted(loginCpus);

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
    turnS: TURN_S,
    warmupS: WARMUP_S,
    clientCpu: perOp(clientCpu),
    concurrency,
    cores: cpus().length,
    load: { before: loadBefore, after: loadavg()[0] ?? NaN },
    raw: { slices: raw, hash: rawHash },
    scryptCpu: perOp(rawCpu),
    inProcess,
    loginTurns: logins.map((t) => t.rps),
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
  loginAgent.destroy();
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1500));
  await sql.end();
  await deleteTestBus(bus, ['auth']).catch(() => undefined);
  await deleteRedisKeys(rateLimitPrefix).catch(() => undefined);
  await db.drop();
}
