/**
 * `npm start`: the whole system in one foreground process — every service and the gateway — with
 * prefixed logs. DATABASE_URL / AMQP_URL are used when set; otherwise an embedded PostgreSQL (data in
 * .data/postgres) and the in-process bus. Ctrl-C stops the gateway first, then the services, then the
 * database; a second Ctrl-C forces exit. `INSTANCES=2` runs two instances of every service (the second
 * on the port + 10: auth-svc 3101 and 3111, …), the gateway round-robining over them.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  SERVICE_DATABASE_URL_VARS,
  SERVICE_SCHEMAS,
  createLogger,
  provisionServiceRoles,
  type ServiceHandle,
} from '@mana/shared';
import type { Logger } from 'pino';
import { startAuthService } from '../auth-svc/src/server';
import { startVaultService } from '../vault-svc/src/server';
import { startGdprService } from '../gdpr-svc/src/server';
import { startAdminService } from '../admin-svc/src/server';
import { startCreditsService } from '../credits-svc/src/server';
import { startGateway } from '../gateway/src/server';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded-postgres';
import { prettyDestination } from './pretty-log';

type Env = Record<string, string | undefined>;
type Starter = (opts: { env?: Env; logger?: Logger }) => Promise<ServiceHandle>;

const SERVICES: Array<{ name: string; start: Starter; portVar: string; urlVar: string; port: number }> = [
  { name: 'auth-svc', start: startAuthService, portVar: 'AUTH_SVC_PORT', urlVar: 'AUTH_SVC_URL', port: 3101 },
  { name: 'vault-svc', start: startVaultService, portVar: 'VAULT_SVC_PORT', urlVar: 'VAULT_SVC_URL', port: 3102 },
  { name: 'gdpr-svc', start: startGdprService, portVar: 'GDPR_SVC_PORT', urlVar: 'GDPR_SVC_URL', port: 3103 },
  { name: 'admin-svc', start: startAdminService, portVar: 'ADMIN_SVC_PORT', urlVar: 'ADMIN_SVC_URL', port: 3104 },
  { name: 'credits-svc', start: startCreditsService, portVar: 'CREDITS_SVC_PORT', urlVar: 'CREDITS_SVC_URL', port: 3105 },
];

const DATA_DIR = process.env.EMBEDDED_PG_DATA_DIR ?? fileURLToPath(new URL('../.data/postgres', import.meta.url));
const EMBEDDED_PG_PORT = Number(process.env.EMBEDDED_PG_PORT ?? 54329);

/** Instances of every service (`INSTANCES`, 1–9): the n-th listens on the service's port + 10·(n−1). */
const INSTANCES = Number(process.env.INSTANCES ?? 1);
const PORT_STEP = 10;

const level = process.env.LOG_LEVEL ?? 'info';
const destination = prettyDestination();
const loggerFor = (name: string) => createLogger(name, level, destination);
const log = loggerFor('mana');

interface Running {
  name: string;
  handle: ServiceHandle;
}

const running: Running[] = [];
let database: EmbeddedPostgresHandle | undefined;
let stopping: Promise<void> | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, name: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
      if (i % 20 === 19) log.warn({ service: name, body: await res.text() }, 'still not ready');
    } catch {
      // not listening yet
    }
    if (stopping) throw new Error('stopped while starting');
    await new Promise((r) => setTimeout(r, 250));
  }
}

function warnAboutDevFallbacks(env: Env): void {
  if (env.NODE_ENV === 'production') return;
  const missing = ['MANA_AUTH_KEK', 'BETTER_AUTH_SECRET', 'MANA_SERVICE_KEY'].filter((k) => !env[k]);
  if (missing.length)
    log.warn(`DEVELOPMENT MODE: ${missing.join(', ')} not set — using built-in development fallbacks. Never do this with real data.`);
}

async function main(): Promise<void> {
  const env: Env = { ...process.env };
  env.NODE_ENV ??= 'development';
  if (!env.DATABASE_URL) {
    log.info('DATABASE_URL is not set: starting an embedded PostgreSQL');
    database = await startEmbeddedPostgres({ dataDir: DATA_DIR, port: EMBEDDED_PG_PORT, logger: loggerFor('postgres') });
    env.DATABASE_URL = database.url;
    // Least privilege: every service logs in as its own role, which owns its schema and no other. The
    // passwords are new on every start (nothing to commit or leak); DATABASE_URL stays the administrator's.
    const passwords = Object.fromEntries(SERVICE_SCHEMAS.map((schema) => [schema, randomBytes(18).toString('base64url')]));
    const urls = await provisionServiceRoles({ adminUrl: database.url, passwords });
    for (const schema of SERVICE_SCHEMAS) env[SERVICE_DATABASE_URL_VARS[schema]] ??= urls[schema];
    log.info('each service connects to the embedded PostgreSQL as its own role (auth_svc, vault_svc, …)');
  }
  if (!env.AMQP_URL) log.info('AMQP_URL is not set: using the in-process event bus (events live only in this process)');
  warnAboutDevFallbacks(env);

  // Port 0 ("any free port") is resolved up front: the services must know each other's addresses
  // (auth-svc's JWKS URL, the gateway's upstreams) before they start.
  if (!Number.isInteger(INSTANCES) || INSTANCES < 1 || INSTANCES > 9)
    throw new ConfigError('mana', [`INSTANCES: a whole number 1–9, got ${process.env.INSTANCES}`]);
  if (env.PORT === '0') env.PORT = String(await freePort());
  const ports = new Map<string, number[]>();
  for (const svc of SERVICES) {
    const list: number[] = [];
    for (let i = 0; i < INSTANCES; i++)
      list.push(env[svc.portVar] === '0' ? await freePort() : Number(env[svc.portVar] ?? svc.port) + i * PORT_STEP);
    ports.set(svc.name, list);
  }
  env.AUTH_JWKS_URL ??= `http://127.0.0.1:${ports.get('auth-svc')?.[0]}/api/auth/jwks`;
  // Services call each other's internal APIs (gdpr → vault, credits, admin; admin → gdpr) at <NAME>_SVC_URL,
  // and the gateway proxies to them there: a comma list of every instance.
  for (const svc of SERVICES) env[svc.urlVar] ??= (ports.get(svc.name) ?? []).map((p) => `http://127.0.0.1:${p}`).join(',');

  // auth-svc first: the others fetch its JWKS and the gateway loads its revocations on start. The instances
  // of one service start one after the other: the first applies the migrations.
  const [auth, ...rest] = SERVICES;
  const startAll = async (svc: (typeof SERVICES)[number]) => {
    for (const [i, port] of (ports.get(svc.name) ?? []).entries()) {
      const name = i === 0 ? svc.name : `${svc.name}#${i + 1}`;
      const handle = await svc.start({ env: { ...env, [svc.portVar]: String(port) }, logger: loggerFor(name) });
      running.push({ name, handle });
    }
  };
  await startAll(auth);
  await Promise.all(rest.map(startAll));

  const gateway = await startGateway({ env, logger: loggerFor('gateway') });
  running.push({ name: 'gateway', handle: gateway });

  await Promise.all(running.map((r) => waitReady(r.handle.url, r.name)));
  const url = `http://localhost:${gateway.port}`;
  // Measured from the start of this process (tsx included), the time a newcomer waits.
  const seconds = process.uptime().toFixed(1);
  const each = INSTANCES > 1 ? `  ${INSTANCES} instances of every service behind the gateway\n` : '';
  process.stdout.write(`\n  Mana Auth is ready at ${url} (started in ${seconds} s)\n${each}  (Ctrl-C to stop)\n\n`);
}

/** Gateway first (no new traffic), then the services in reverse start order, then the database. */
function stop(): Promise<void> {
  stopping ??= (async () => {
    const gateway = running.find((r) => r.name === 'gateway');
    if (gateway) await gateway.handle.close();
    for (const r of running.filter((x) => x.name !== 'gateway').reverse()) await r.handle.close();
    if (database) await database.stop();
  })();
  return stopping;
}

// tsx relays the terminal's Ctrl-C to this process when it has not seen it arrive here within 30 ms, so
// one keypress can be delivered twice: only a signal more than a second after the first forces exit.
const FORCE_AFTER_MS = 1_000;
let firstSignalAt: number | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (firstSignalAt !== undefined) {
      if (Date.now() - firstSignalAt < FORCE_AFTER_MS) return;
      log.warn('second signal: forcing exit');
      process.exit(130);
    }
    firstSignalAt = Date.now();
    log.info({ signal }, 'stopping Mana Auth (press Ctrl-C again to force)');
    stop().then(
      () => {
        // exit once stdout (maybe a pipe) has taken the last lines
        process.exitCode = 0;
        setTimeout(() => process.exit(0), 100);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}

main().catch(async (err: unknown) => {
  if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
  else if ((err as { code?: unknown }).code === 'EADDRINUSE')
    log.error(
      `${(err as Error).message} — is another Mana Auth (npm start) already running? Stop it, or choose other ports (PORT, AUTH_SVC_PORT … CREDITS_SVC_PORT).`,
    );
  else log.error({ err }, 'start failed');
  await stop().catch(() => undefined);
  // Leave the event loop a moment to flush stderr into a pipe before exiting.
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 500);
});
