// The whole system for the soak: every service (`instances` of each) and the gateway, each in its own process
// (`node <SERVICE_NODE_FLAGS> --import tsx <svc>/src/server.ts`, as in production), on a fresh database and own bus names, with an SMTP
// sink for the mails. stop() ends the processes and removes the database, the queues and the Redis keys.
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SMTPServer } from 'smtp-server';
import {
  TEST_REDIS_URL,
  createTestDatabase,
  deleteBrokerObjects,
  deleteRedisKeys,
  deleteTestBus,
  freePort,
  serviceDatabaseEnv,
  startServiceProcess,
  testBusEnv,
  uniqueName,
  type TestDatabase,
} from '../../shared/src/testing';

const ROOT = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);

export const SERVICE_KEY = `soak-service-key-${randomBytes(16).toString('hex')}`;
export const METRICS_TOKEN = `soak-metrics-${randomBytes(16).toString('hex')}`;

/** Start order: auth first (the others fetch its JWKS); instances of one service one after the other (migrations). */
const SERVICES = [
  { name: 'auth', folder: 'auth-svc', portVar: 'AUTH_SVC_PORT', urlVar: 'AUTH_SVC_URL' },
  { name: 'vault', folder: 'vault-svc', portVar: 'VAULT_SVC_PORT', urlVar: 'VAULT_SVC_URL' },
  { name: 'credits', folder: 'credits-svc', portVar: 'CREDITS_SVC_PORT', urlVar: 'CREDITS_SVC_URL' },
  { name: 'admin', folder: 'admin-svc', portVar: 'ADMIN_SVC_PORT', urlVar: 'ADMIN_SVC_URL' },
  { name: 'gdpr', folder: 'gdpr-svc', portVar: 'GDPR_SVC_PORT', urlVar: 'GDPR_SVC_URL' },
] as const;

/** Queues the services declare (logical names), for the clean-up when `rabbitmqctl` cannot list them. */
const QUEUES = ['auth', 'vault', 'credits', 'credits.user-registered', 'gdpr', 'admin', 'admin.user-registered', 'admin.user-updated'];

export interface Proc {
  /** e.g. `credits#2`, `gateway` */
  name: string;
  url: string;
  child: ChildProcess;
  log: string;
  /** SIGTERM, then SIGKILL after 20 s. */
  stop: () => Promise<void>;
}

export interface System {
  gatewayUrl: string;
  /** Every process: the gateway first, then the services in start order. */
  procs: Proc[];
  db: TestDatabase;
  /** Queue name prefix on the shared broker (every name of this run starts with it). */
  busPrefix: string;
  mailsSent: () => number;
  stop: () => Promise<void>;
}

/** An SMTP server that accepts and drops every mail (auth-svc sends verification mails on registration). */
async function startSmtpSink() {
  let count = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => {
        count++;
        callback();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, count: () => count, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Every process this run started, ready or not (a signal during the start must not leave one behind). */
const spawned = new Set<ChildProcess>();

/** One process; resolves once it answers /readyz. Its stdout and stderr (pino JSON lines) go to `log`. */
async function startProcess(name: string, script: string, port: number, env: Record<string, string>, logDir: string): Promise<Proc> {
  const log = join(logDir, `${name.replace('#', '-')}.log`);
  const p = await startServiceProcess({
    name,
    script,
    cwd: ROOT,
    port,
    env,
    readyTimeoutMs: 120_000,
    logFile: log,
    onSpawn: (child) => spawned.add(child),
  });
  return { name, url: p.url, child: p.child, log, stop: () => p.stop(20_000) };
}

/** Queues and exchanges on the broker whose name starts with `prefix` (via rabbitmqctl; undefined if not allowed). */
async function brokerObjects(prefix: string): Promise<{ queues: string[]; exchanges: string[] } | undefined> {
  const list = async (what: string) => {
    const { stdout } = await run('rabbitmqctl', ['-q', what, 'name'], { timeout: 30_000 });
    return stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith(prefix));
  };
  try {
    return { queues: await list('list_queues'), exchanges: await list('list_exchanges') };
  } catch {
    return undefined;
  }
}

/** Messages in the dead-letter queues of this run (`*.dlq`), via rabbitmqctl; undefined if not allowed. */
export async function deadLetters(prefix: string): Promise<number | undefined> {
  try {
    const { stdout } = await run('rabbitmqctl', ['-q', 'list_queues', 'name', 'messages'], { timeout: 30_000 });
    return stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([name]) => name?.startsWith(prefix) && name.endsWith('.dlq'))
      .reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
  } catch {
    return undefined;
  }
}

export async function startSystem(opts: { instances: number; onStep?: (msg: string) => void }): Promise<System> {
  const step = opts.onStep ?? (() => undefined);
  const procs: Proc[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  const logDir = mkdtempSync(join(tmpdir(), 'mana-soak-'));
  const busPrefix = uniqueName('soak');
  const bus = testBusEnv(busPrefix);
  const rateLimitPrefix = uniqueName('soak-rl');
  let mails = () => 0;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stopAll());
  const stopAll = async () => {
    const gateway = procs.filter((p) => p.name === 'gateway');
    // Gateway first (no new traffic), then the services in reverse start order, as `npm start` stops.
    for (const p of [...gateway, ...procs.filter((x) => x.name !== 'gateway').reverse()]) await p.stop();
    for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => step(`clean-up failed: ${String(err)}`));
    cleanups.length = 0;
    // Whatever this run declared on the broker (retry queues, dead-letter queues, exchanges): none may be left.
    const left = await brokerObjects(busPrefix);
    if (left && (left.queues.length || left.exchanges.length)) await deleteBrokerObjects(left.queues, left.exchanges);
    rmSync(logDir, { recursive: true, force: true });
  };
  // Ctrl-C or a kill, also while starting: the processes, the database and the queues go all the same.
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      step(`${signal}: stopping`);
      void stop().finally(() => process.exit(130));
    });
  try {
    const db = await createTestDatabase('mana_soak');
    cleanups.push(() => db.drop());
    cleanups.push(() => deleteRedisKeys(rateLimitPrefix));
    cleanups.push(() => deleteTestBus(bus, QUEUES));
    const smtp = await startSmtpSink();
    cleanups.push(() => smtp.close());
    mails = smtp.count;

    const gatewayPort = await freePort();
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const ports = new Map<string, number[]>();
    for (const svc of SERVICES) {
      const list: number[] = [];
      for (let i = 0; i < opts.instances; i++) list.push(await freePort());
      ports.set(svc.name, list);
    }
    const urls = Object.fromEntries(
      SERVICES.map((s) => [s.urlVar, (ports.get(s.name) ?? []).map((p) => `http://127.0.0.1:${p}`).join(',')]),
    );
    const env: Record<string, string> = {
      NODE_ENV: 'development',
      LOG_LEVEL: process.env.SOAK_LOG_LEVEL ?? 'warn',
      DATABASE_URL: db.url,
      ...(await serviceDatabaseEnv(db)),
      ...bus,
      MANA_SERVICE_KEY: SERVICE_KEY,
      METRICS_TOKEN,
      // Shared by the instances of a service (sessions, wrapped keys): explicit, not the development fallbacks.
      BETTER_AUTH_SECRET: randomBytes(32).toString('hex'),
      MANA_AUTH_KEK: randomBytes(32).toString('base64'),
      BASE_URL: gatewayUrl,
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(smtp.port),
      MAIL_FROM: 'Mana Soak <no-reply@mana.test>',
      AUTH_JWKS_URL: `http://127.0.0.1:${ports.get('auth')?.[0]}/api/auth/jwks`,
      ...urls,
    };
    const startService = async (svc: (typeof SERVICES)[number]) => {
      for (const [i, port] of (ports.get(svc.name) ?? []).entries()) {
        const name = `${svc.name}#${i + 1}`;
        step(`starting ${name}`);
        procs.push(await startProcess(name, `${svc.folder}/src/server.ts`, port, { ...env, [svc.portVar]: String(port) }, logDir));
      }
    };
    const [auth, ...rest] = SERVICES;
    await startService(auth);
    await Promise.all(rest.map(startService));
    step('starting gateway');
    const gateway = await startProcess(
      'gateway',
      'gateway/src/server.ts',
      gatewayPort,
      {
        ...env,
        PORT: String(gatewayPort),
        REDIS_URL: TEST_REDIS_URL,
        RATE_LIMIT_PREFIX: rateLimitPrefix,
        // One client address sends everything: the per-IP limits must not be what the soak measures.
        RATE_LIMIT_POINTS: '1000000000',
        RATE_LIMIT_AUTH_POINTS: '1000000000',
      },
      logDir,
    );
    // The services in a stable order (start order, instance), the gateway first.
    const order = (p: Proc) => SERVICES.findIndex((s) => p.name.startsWith(`${s.name}#`)) * 10 + Number(p.name.split('#')[1]);
    procs.sort((a, b) => order(a) - order(b));
    procs.unshift(gateway);
    return { gatewayUrl, procs, db, busPrefix, mailsSent: () => mails(), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** What a log line at level error says, short: a failed query's cause (the end of its message), else the message. */
function gist(line: string): string {
  try {
    const entry = JSON.parse(line) as { msg?: string; err?: { message?: string } };
    const message = entry.err?.message ?? entry.msg ?? line;
    const cause = message.startsWith('Failed query') ? message.slice(message.lastIndexOf(': ') + 2) : message;
    return cause.replace(/\s+/g, ' ').slice(0, 160);
  } catch {
    return line.slice(0, 160);
  }
}

/** Lines a process logged at level warn (40) and error or worse (≥ 50, counted by what they say). */
export function logLevels(p: Proc): { warn: number; error: number; errors: Map<string, number> } {
  let warn = 0;
  let error = 0;
  const errors = new Map<string, number>();
  for (const line of readFileSync(p.log, 'utf8').split('\n')) {
    const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 0);
    if (level === 40) warn++;
    if (level >= 50) {
      error++;
      const key = gist(line);
      errors.set(key, (errors.get(key) ?? 0) + 1);
    }
  }
  return { warn, error, errors };
}
