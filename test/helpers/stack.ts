import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { AmqpBus, createBus, createLogger, type EventBus, type EventEnvelope, type ServiceHandle } from '@mana/shared';
import {
  TEST_AMQP_URL,
  TEST_REDIS_URL,
  createTestDatabase,
  startTcpProxy,
  testBusEnv,
  deleteTestBus,
  uniqueName,
  type TcpProxy,
  type TestDatabase,
} from '@mana/shared/testing';
import { startAuthService } from '../../auth-svc/src/server';
import { startGateway } from '../../gateway/src/server';
import { startSmtpCatcher, type SmtpCatcher } from './smtp';

export const STACK_SERVICE_KEY = 'e2e-service-key-0123456789abcdef0123456789';

export type StackService = 'auth' | 'vault' | 'credits' | 'gdpr' | 'admin';
type StartFn = (opts: { env: Record<string, string> }) => Promise<ServiceHandle>;

/** The services besides auth, in start order, with their port variable and start function. */
const OPTIONAL_SERVICES: ReadonlyArray<{
  name: Exclude<StackService, 'auth'>;
  portVar: string;
  urlVar: string;
  load: () => Promise<StartFn>;
}> = [
  {
    name: 'vault',
    portVar: 'VAULT_SVC_PORT',
    urlVar: 'VAULT_SVC_URL',
    load: async () => (await import('../../vault-svc/src/server')).startVaultService,
  },
  {
    name: 'credits',
    portVar: 'CREDITS_SVC_PORT',
    urlVar: 'CREDITS_SVC_URL',
    load: async () => (await import('../../credits-svc/src/server')).startCreditsService,
  },
  {
    name: 'admin',
    portVar: 'ADMIN_SVC_PORT',
    urlVar: 'ADMIN_SVC_URL',
    load: async () => (await import('../../admin-svc/src/server')).startAdminService,
  },
  {
    name: 'gdpr',
    portVar: 'GDPR_SVC_PORT',
    urlVar: 'GDPR_SVC_URL',
    load: async () => (await import('../../gdpr-svc/src/server')).startGdprService,
  },
];

export interface StackOptions {
  /** Services behind the gateway (auth is always started). */
  services?: StackService[];
  /** Number of auth-svc instances behind the gateway (round robin). */
  authInstances?: number;
  /** Extra environment for every service and the gateway. */
  env?: Record<string, string>;
  /** Extra environment for one service only. */
  serviceEnv?: Partial<Record<StackService, Record<string, string>>>;
  /** auth-svc reaches RabbitMQ through a TCP proxy the test can cut (`stack.authBrokerProxy`). */
  proxyAuthBroker?: boolean;
}

export interface Stack {
  gatewayUrl: string;
  smtp: SmtpCatcher;
  db: TestDatabase;
  /** A pool on the test database (assertions on rows). */
  sql: pg.Pool;
  /** The environment every service got (bus names, database, keys). */
  env: Record<string, string>;
  services: {
    auth: ServiceHandle[];
    vault?: ServiceHandle;
    credits?: ServiceHandle;
    gdpr?: ServiceHandle;
    admin?: ServiceHandle;
    gateway: ServiceHandle;
  };
  /** Stops one optional service (its port stays reserved in the gateway's table: requests get 502/503). */
  stopService: (name: Exclude<StackService, 'auth'>) => Promise<void>;
  /** Starts a stopped optional service again on the same port, with the same environment. */
  startService: (name: Exclude<StackService, 'auth'>) => Promise<ServiceHandle>;
  authBrokerProxy?: TcpProxy;
  /** Every event published on this stack's exchange, in arrival order. */
  events: EventEnvelope[];
  waitForEvent: (type: string, match?: (e: EventEnvelope) => boolean, timeoutMs?: number) => Promise<EventEnvelope>;
  /** Publishes events on the stack's exchange as another service would, through a publisher of its own. */
  publish: (...events: EventEnvelope[]) => Promise<void>;
  close: () => Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/**
 * The system in one process for end-to-end tests: a fresh database, own bus names, an SMTP catcher,
 * auth-svc (one or more instances), optionally vault-svc, and the gateway in front (BASE_URL). Every
 * part listens on 127.0.0.1 port 0; close() tears all of it down and drops the database.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    const db = await createTestDatabase('mana_e2e');
    cleanups.push(() => db.drop());
    const sql = new pg.Pool({ connectionString: db.url, max: 3 });
    cleanups.push(() => sql.end());
    const smtp = await startSmtpCatcher();
    cleanups.push(() => smtp.close());
    const bus = testBusEnv(uniqueName('e2e'));
    // Runs after every service closed (cleanups run in reverse): leave no queues behind on the shared broker.
    cleanups.push(() => deleteTestBus(bus, ['auth', 'vault', 'credits', 'credits.user-registered', 'gdpr', 'admin']));
    const gatewayPort = await freePort();
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const env: Record<string, string> = {
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
      DATABASE_URL: db.url,
      ...bus,
      MANA_SERVICE_KEY: STACK_SERVICE_KEY,
      BASE_URL: gatewayUrl,
      SMTP_HOST: smtp.host,
      SMTP_PORT: String(smtp.port),
      MAIL_FROM: 'Mana Test <no-reply@mana.test>',
      ...opts.env,
    };

    const observer = await observe(bus);
    cleanups.push(() => observer.bus.close());

    let authBrokerProxy: TcpProxy | undefined;
    if (opts.proxyAuthBroker) {
      const target = new URL(TEST_AMQP_URL);
      const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
      authBrokerProxy = proxy;
      cleanups.push(() => proxy.close());
    }
    const authEnv = { ...env, AUTH_SVC_PORT: '0', ...(authBrokerProxy ? { AMQP_URL: authBrokerProxy.urlFor(TEST_AMQP_URL) } : {}) };
    const auth: ServiceHandle[] = [];
    for (let i = 0; i < (opts.authInstances ?? 1); i++) {
      const h = await startAuthService({ env: authEnv });
      auth.push(h);
      cleanups.push(() => h.close());
    }
    const jwksUrl = `${auth[0]?.url}/api/auth/jwks`;

    // Ports are chosen up front so services that call each other (gdpr ↔ admin ↔ credits) know every URL.
    const wanted = OPTIONAL_SERVICES.filter((svc) => opts.services?.includes(svc.name));
    const ports = new Map<string, number>();
    for (const svc of wanted) ports.set(svc.name, await freePort());
    const serviceUrls: Record<string, string> = { AUTH_SVC_URL: auth.map((h) => h.url).join(',') };
    for (const svc of wanted) serviceUrls[svc.urlVar] = `http://127.0.0.1:${ports.get(svc.name)}`;
    const running: Stack['services'] = { auth, gateway: undefined as unknown as ServiceHandle };
    const startOne = async (name: Exclude<StackService, 'auth'>) => {
      const svc = OPTIONAL_SERVICES.find((x) => x.name === name);
      if (!svc || !ports.has(name)) throw new Error(`${name} is not part of this stack`);
      const start = await svc.load();
      const h = await start({
        env: { ...env, ...serviceUrls, AUTH_JWKS_URL: jwksUrl, [svc.portVar]: String(ports.get(name)), ...opts.serviceEnv?.[name] },
      });
      running[name] = h;
      return h;
    };
    const stopOne = async (name: Exclude<StackService, 'auth'>) => {
      const h = running[name];
      running[name] = undefined;
      await h?.close();
    };
    for (const svc of wanted) {
      await startOne(svc.name);
      cleanups.push(() => stopOne(svc.name));
    }

    const gateway = await startGateway({
      env: {
        ...env,
        PORT: String(gatewayPort),
        AUTH_JWKS_URL: jwksUrl,
        ...serviceUrls,
        REDIS_URL: TEST_REDIS_URL,
        RATE_LIMIT_PREFIX: uniqueName('e2e-rl'),
        RATE_LIMIT_POINTS: '100000',
        RATE_LIMIT_AUTH_POINTS: '100000',
        ...opts.env,
      },
    });
    cleanups.push(() => gateway.close());
    running.gateway = gateway;

    return {
      gatewayUrl,
      smtp,
      db,
      sql,
      env,
      services: running,
      stopService: stopOne,
      startService: startOne,
      authBrokerProxy,
      events: observer.events,
      waitForEvent: observer.waitFor,
      publish: (...events) => publishAs(bus, events),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Subscribes a per-instance queue to every key of the stack's exchange. */
async function observe(env: { AMQP_URL: string; AMQP_EXCHANGE: string; AMQP_QUEUE_PREFIX: string }) {
  const events: EventEnvelope[] = [];
  const bus: EventBus = createBus({
    url: env.AMQP_URL,
    exchange: env.AMQP_EXCHANGE,
    queuePrefix: env.AMQP_QUEUE_PREFIX,
    logger: createLogger('e2e-observer', 'silent'),
  });
  await bus.subscribe({
    queue: 'observer',
    bindings: ['#'],
    perInstance: true,
    handler: async (e) => {
      events.push(e);
    },
  });
  await bus.start();
  await bus.waitForConnection(10_000);
  const waitFor = async (type: string, match: (e: EventEnvelope) => boolean = () => true, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = events.find((e) => e.type === type && match(e));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no ${type} event within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return { bus, events, waitFor };
}

async function publishAs(env: { AMQP_URL: string; AMQP_EXCHANGE: string; AMQP_QUEUE_PREFIX: string }, events: EventEnvelope[]) {
  const publisher = new AmqpBus({
    url: env.AMQP_URL,
    exchange: env.AMQP_EXCHANGE,
    queuePrefix: env.AMQP_QUEUE_PREFIX,
    logger: createLogger('e2e-publisher', 'silent'),
  });
  await publisher.start();
  try {
    await publisher.waitForConnection(5_000);
    for (const event of events) await publisher.publish(event);
  } finally {
    await publisher.close();
  }
}
