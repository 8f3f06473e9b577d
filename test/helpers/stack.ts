import type { ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import type pg from 'pg';
import { AmqpBus, createBus, createLogger, type EventBus, type EventEnvelope, type ServiceHandle } from '@mana/shared';
import {
  TEST_AMQP_URL,
  TEST_REDIS_URL,
  createTestDatabase,
  serviceDatabaseEnv,
  freePort,
  startServiceProcess,
  startTcpProxy,
  testPool,
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

/** Every service in start order (auth first: the others fetch its JWKS), with its port variable and start function. */
const SERVICES: ReadonlyArray<{
  name: StackService;
  portVar: string;
  urlVar: string;
  load: () => Promise<StartFn>;
}> = [
  {
    name: 'auth',
    portVar: 'AUTH_SVC_PORT',
    urlVar: 'AUTH_SVC_URL',
    load: async () => startAuthService,
  },
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

/** Instances per service when a test does not say: `E2E_INSTANCES` (the e2e suite runs once with 2 in CI). */
export const DEFAULT_INSTANCES = Math.max(1, Number(process.env.E2E_INSTANCES ?? 1) || 1);

export interface StackOptions {
  /** Services behind the gateway (auth is always started). */
  services?: StackService[];
  /** Instances of every service behind the gateway (round robin; default `E2E_INSTANCES`, else 1). */
  instances?: number;
  /** Number of auth-svc instances (default `instances`). */
  authInstances?: number;
  /** Extra environment for every service and the gateway. */
  env?: Record<string, string>;
  /** Extra environment for one service only. */
  serviceEnv?: Partial<Record<StackService, Record<string, string>>>;
  /** auth-svc reaches RabbitMQ through a TCP proxy the test can cut (`stack.authBrokerProxy`). */
  proxyAuthBroker?: boolean;
  /** Every service instance and the gateway reach RabbitMQ through one TCP proxy the test can cut (`stack.brokerProxy`). */
  proxyBroker?: boolean;
  /** The gateway reaches Redis (its rate-limit store) through a TCP proxy the test can cut (`stack.redisProxy`). */
  proxyRedis?: boolean;
  /**
   * Services that run as child processes (`node --import tsx <svc>/src/server.ts`, the same environment and
   * ports) instead of in this process, so a test can SIGKILL one instance (`stack.crash`) and start it again.
   */
  spawn?: StackService[];
}

export interface Stack {
  gatewayUrl: string;
  smtp: SmtpCatcher;
  db: TestDatabase;
  /** A pool on the test database (assertions on rows). */
  sql: pg.Pool;
  /** The environment every service got (bus names, database, keys). */
  env: Record<string, string>;
  /** The gateway's environment (a second gateway started with it joins the same system). */
  gatewayEnv: Record<string, string>;
  /** The running services: the first instance of each (auth: every instance). */
  services: {
    auth: ServiceHandle[];
    vault?: ServiceHandle;
    credits?: ServiceHandle;
    gdpr?: ServiceHandle;
    admin?: ServiceHandle;
    gateway: ServiceHandle;
  };
  /** Every running instance of every service (empty while stopped). */
  instances: Record<StackService, ServiceHandle[]>;
  /** Stops every instance of a service (their ports stay in the gateway's table: requests get 502/503). */
  stopService: (name: StackService) => Promise<void>;
  /** Starts a stopped service's instances again on the same ports, with the same environment; resolves with the first. */
  startService: (name: StackService) => Promise<ServiceHandle>;
  authBrokerProxy?: TcpProxy;
  brokerProxy?: TcpProxy;
  redisProxy?: TcpProxy;
  /** SIGKILLs one instance of a spawned service (no shutdown of any kind) and waits until the process is gone. */
  crash: (name: StackService, index: number) => Promise<void>;
  /**
   * Starts a crashed instance again on its port; resolves when it answers /readyz. `env` is added to the
   * instance's first environment for this start only (e.g. `{ MANA_FAILPOINT: 'outbox.after-publish' }`).
   */
  revive: (name: StackService, index: number, env?: Record<string, string>) => Promise<ServiceHandle>;
  /** Resolves with the signal (or exit code) once a spawned instance's process ended, whoever ended it. */
  exited: (name: StackService, index: number) => Promise<NodeJS.Signals | number>;
  /** Every event published on this stack's exchange, in arrival order. */
  events: EventEnvelope[];
  waitForEvent: (type: string, match?: (e: EventEnvelope) => boolean, timeoutMs?: number) => Promise<EventEnvelope>;
  /** Publishes events on the stack's exchange as another service would, through a publisher of its own. */
  publish: (...events: EventEnvelope[]) => Promise<void>;
  close: () => Promise<void>;
}

/**
 * The system in one process for end-to-end tests: a fresh database, own bus names, an SMTP catcher,
 * auth-svc and the services asked for — `instances` of each (`E2E_INSTANCES`), the gateway round-robining
 * over them — and the gateway in front (BASE_URL). Every part listens on a free 127.0.0.1 port; close()
 * tears all of it down and drops the database.
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
    const sql = testPool(db.url, 3);
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
      // Every service logs in as its own role (auth_svc, vault_svc, …), which cannot touch another schema.
      ...(await serviceDatabaseEnv(db)),
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

    const amqp = new URL(TEST_AMQP_URL);
    const proxyTo = async (host: string, port: number) => {
      const proxy = await startTcpProxy({ host, port });
      cleanups.push(() => proxy.close());
      return proxy;
    };
    const authBrokerProxy = opts.proxyAuthBroker ? await proxyTo(amqp.hostname, Number(amqp.port || 5672)) : undefined;
    const brokerProxy = opts.proxyBroker ? await proxyTo(amqp.hostname, Number(amqp.port || 5672)) : undefined;
    const redis = new URL(TEST_REDIS_URL);
    const redisProxy = opts.proxyRedis ? await proxyTo(redis.hostname, Number(redis.port || 6379)) : undefined;
    const brokerEnv: Record<string, string> = brokerProxy ? { AMQP_URL: brokerProxy.urlFor(TEST_AMQP_URL) } : {};

    // Ports are chosen up front so services that call each other (gdpr ↔ admin ↔ credits ↔ auth) know every URL,
    // and a stopped service comes back where the gateway and the others expect it.
    const instances = opts.instances ?? DEFAULT_INSTANCES;
    const wanted = SERVICES.filter((svc) => svc.name === 'auth' || opts.services?.includes(svc.name));
    const ports = new Map<StackService, number[]>();
    for (const svc of wanted) {
      const n = svc.name === 'auth' ? (opts.authInstances ?? instances) : instances;
      const list: number[] = [];
      for (let i = 0; i < n; i++) list.push(await freePort());
      ports.set(svc.name, list);
    }
    const serviceUrls: Record<string, string> = {};
    for (const svc of wanted) serviceUrls[svc.urlVar] = (ports.get(svc.name) ?? []).map((p) => `http://127.0.0.1:${p}`).join(',');
    const jwksUrl = `http://127.0.0.1:${ports.get('auth')?.[0]}/api/auth/jwks`;

    const auth: ServiceHandle[] = [];
    const running: Stack['services'] = { auth, gateway: undefined as unknown as ServiceHandle };
    const all: Record<StackService, ServiceHandle[]> = { auth, vault: [], credits: [], gdpr: [], admin: [] };
    const startOne = async (name: StackService) => {
      const svc = SERVICES.find((x) => x.name === name);
      const list = ports.get(name);
      if (!svc || !list) throw new Error(`${name} is not part of this stack`);
      if (all[name].length) throw new Error(`${name} is running`);
      const start = await svc.load();
      const svcEnv = {
        ...env,
        ...serviceUrls,
        AUTH_JWKS_URL: jwksUrl,
        ...brokerEnv,
        ...(name === 'auth' && authBrokerProxy ? { AMQP_URL: authBrokerProxy.urlFor(TEST_AMQP_URL) } : {}),
        ...opts.serviceEnv?.[name],
      };
      try {
        // One after the other: the first applies the migrations, the next ones find them done.
        for (const port of list) {
          const instanceEnv = { ...svcEnv, [svc.portVar]: String(port) };
          all[name].push(opts.spawn?.includes(name) ? await spawnService(name, port, instanceEnv) : await start({ env: instanceEnv }));
        }
      } catch (err) {
        await stopOne(name);
        throw err;
      }
      if (name !== 'auth') running[name] = all[name][0];
      return all[name][0];
    };
    const stopOne = async (name: StackService) => {
      const handles = all[name].splice(0);
      if (name !== 'auth') running[name] = undefined;
      await Promise.all(handles.map((h) => h.close()));
    };
    for (const svc of wanted) {
      cleanups.push(() => stopOne(svc.name));
      await startOne(svc.name);
    }
    const crash = async (name: StackService, index: number) => {
      const h = all[name][index] as SpawnedHandle | undefined;
      if (!h?.child) throw new Error(`${name}[${index}] is not a spawned instance`);
      await h.kill('SIGKILL');
    };
    const revive = async (name: StackService, index: number, extra: Record<string, string> = {}) => {
      const svc = SERVICES.find((x) => x.name === name);
      const port = ports.get(name)?.[index];
      const h = all[name][index] as SpawnedHandle | undefined;
      if (!svc || port === undefined || !h?.child) throw new Error(`${name}[${index}] is not a spawned instance`);
      const env2 = { ...(h.firstEnv ?? h.env ?? {}), ...extra };
      const fresh = await spawnService(name, port, env2);
      fresh.firstEnv = h.firstEnv ?? h.env;
      all[name][index] = fresh;
      if (index === 0 && name !== 'auth') running[name] = fresh;
      return fresh;
    };

    const gatewayEnv: Record<string, string> = {
      ...env,
      PORT: String(gatewayPort),
      AUTH_JWKS_URL: jwksUrl,
      ...serviceUrls,
      ...brokerEnv,
      REDIS_URL: redisProxy ? redisProxy.urlFor(TEST_REDIS_URL) : TEST_REDIS_URL,
      RATE_LIMIT_PREFIX: uniqueName('e2e-rl'),
      RATE_LIMIT_POINTS: '100000',
      RATE_LIMIT_AUTH_POINTS: '100000',
      ...opts.env,
    };
    const gateway = await startGateway({ env: gatewayEnv });
    cleanups.push(() => gateway.close());
    running.gateway = gateway;

    return {
      gatewayUrl,
      smtp,
      db,
      sql,
      env,
      gatewayEnv,
      services: running,
      instances: all,
      stopService: stopOne,
      startService: startOne,
      authBrokerProxy,
      brokerProxy,
      redisProxy,
      crash,
      revive,
      exited: (name, index) => {
        const h = all[name][index] as SpawnedHandle | undefined;
        if (!h?.child) throw new Error(`${name}[${index}] is not a spawned instance`);
        return h.exited;
      },
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

interface SpawnedHandle extends ServiceHandle {
  child?: ChildProcess;
  env?: Record<string, string>;
  /** The environment of the instance's first start (a revive with extra variables starts from it). */
  firstEnv?: Record<string, string>;
  kill: (signal: NodeJS.Signals) => Promise<void>;
  exited: Promise<NodeJS.Signals | number>;
}

const SERVICE_FOLDERS: Record<StackService, string> = {
  auth: 'auth-svc',
  vault: 'vault-svc',
  credits: 'credits-svc',
  gdpr: 'gdpr-svc',
  admin: 'admin-svc',
};

/** One service instance as its own process, the way it runs in production; resolves once it answers /readyz. */
async function spawnService(name: StackService, port: number, env: Record<string, string>): Promise<SpawnedHandle> {
  const p = await startServiceProcess({
    name,
    script: `${SERVICE_FOLDERS[name]}/src/server.ts`,
    cwd: new URL('../../', import.meta.url).pathname,
    port,
    env,
  });
  return {
    url: p.url,
    port,
    server: undefined as unknown as Server,
    close: () => p.stop(),
    child: p.child,
    env,
    kill: p.kill,
    exited: p.exited,
  };
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
