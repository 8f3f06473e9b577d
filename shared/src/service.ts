import type { Express } from 'express';
import type { Logger } from 'pino';
import type { PgSchema } from 'drizzle-orm/pg-core';
import { createJwtVerifier, type JwtVerifier } from './auth/jwt';
import { trackRevocations, type RevocationTracking } from './auth/revocations';
import { ERRORS } from './errors';
import { createBusFromConfig, OutboxRelay, type EventBus, type OutboxTable } from './bus';
import { ConfigError, isMain, jwtIssuer, runMain, type CommonConfig } from './config';
import { createDatabase, runMigrations, type Database } from './db';
import { createApp, type AppState, type ReadinessCheck } from './http/app';
import { handleSignals, startHttp, type ServiceHandle, type ShutdownStep } from './http/lifecycle';
import { createLogger } from './logger';
import { ServiceMetrics } from './metrics';

export interface RuntimeOptions<TSchema extends Record<string, unknown>> {
  /** e.g. `vault-svc` */
  name: string;
  config: CommonConfig;
  /** The service's own PostgreSQL schema (migration table lives there too). */
  dbSchema: PgSchema;
  databaseUrl: string | undefined;
  tables: TSchema;
  migrationsFolder: string;
  /** The service's outbox table; when given, an OutboxRelay runs. */
  outbox?: OutboxTable;
  logger?: Logger;
  poolSize?: number;
  /**
   * Refuse tokens of ended sessions (default true): the service keeps its own denylist, so reached
   * directly it is as strict as through the gateway. auth-svc, which checks sessions in its database, opts out.
   */
  trackRevocations?: boolean;
}

/** Everything a service is built from: config, logger, database, bus, outbox relay, JWT verifier. */
export interface Runtime<TSchema extends Record<string, unknown>> {
  name: string;
  config: CommonConfig;
  logger: Logger;
  database: Database<TSchema>;
  bus: EventBus;
  relay?: OutboxRelay;
  /** Verifies access tokens, refusing those of revoked sessions when revocations are tracked. */
  verifier: JwtVerifier;
  revocations?: RevocationTracking;
  state: AppState;
  /** This runtime's Prometheus registry: HTTP, pool, bus and outbox metrics; services add their business counters. */
  metrics: ServiceMetrics;
}

export async function createRuntime<TSchema extends Record<string, unknown>>(opts: RuntimeOptions<TSchema>): Promise<Runtime<TSchema>> {
  const { config } = opts;
  if (!opts.databaseUrl) throw new ConfigError(opts.name, ['DATABASE_URL: required']);
  const logger = opts.logger ?? createLogger(opts.name, config.LOG_LEVEL);
  const database = createDatabase({
    url: opts.databaseUrl,
    schema: opts.tables,
    logger,
    applicationName: opts.name,
    max: opts.poolSize,
  });
  try {
    await runMigrations(database.pool, { folder: opts.migrationsFolder, schema: opts.dbSchema.schemaName, logger });
  } catch (err) {
    await database.close();
    throw err;
  }
  const bus = createBusFromConfig(config, logger.child({ component: 'bus' }));
  const metrics = new ServiceMetrics({ service: opts.name });
  metrics.observePool(database.pool);
  metrics.observeBus(bus);
  if (opts.outbox) metrics.observeOutbox(database.db, opts.outbox);
  await bus.start();
  const relay = opts.outbox
    ? new OutboxRelay({
        db: database.db,
        outbox: opts.outbox,
        bus,
        logger: logger.child({ component: 'outbox' }),
        retentionMs: config.OUTBOX_RETENTION_SECONDS * 1000,
      })
    : undefined;
  relay?.start();
  const tokens = createJwtVerifier({
    jwksUrl: config.AUTH_JWKS_URL,
    issuer: jwtIssuer(config),
    audience: config.JWT_AUDIENCE,
  });
  const revocations =
    opts.trackRevocations === false
      ? undefined
      : await trackRevocations({
          bus,
          queue: `${opts.name}.revocations`,
          // auth-svc's internal API lives where its JWKS does.
          authUrls: [new URL(config.AUTH_JWKS_URL).origin],
          serviceKey: config.MANA_SERVICE_KEY,
          logger: logger.child({ component: 'revocations' }),
        });
  const verifier: JwtVerifier = revocations
    ? {
        ...tokens,
        verify: async (token) => {
          const claims = await tokens.verify(token);
          if (revocations.denylist.has(claims.sid)) throw ERRORS.tokenRevoked();
          return claims;
        },
      }
    : tokens;
  return { name: opts.name, config, logger, database, bus, relay, verifier, revocations, state: { shuttingDown: false }, metrics };
}

/** Starts the HTTP server; shutdown runs: drain requests → stop consumers → outbox → bus → pool. */
export function serve<TSchema extends Record<string, unknown>>(
  rt: Runtime<TSchema>,
  app: Express,
  port: number,
  extraSteps: ShutdownStep[] = [],
): Promise<ServiceHandle> {
  return startHttp({
    name: rt.name,
    handler: app,
    port,
    logger: rt.logger,
    state: rt.state,
    drainTimeoutMs: rt.config.SHUTDOWN_TIMEOUT_MS,
    steps: [
      { name: 'stop consumers', run: () => rt.bus.stopConsuming() },
      ...extraSteps,
      { name: 'stop revocation tracking', run: () => rt.revocations?.stop() },
      { name: 'stop outbox relay', run: () => rt.relay?.stop() },
      { name: 'close bus', run: () => rt.bus.close() },
      { name: 'detach metrics', run: async () => rt.metrics.close() },
      { name: 'close database pool', run: () => rt.database.close() },
    ],
  });
}

/** /readyz checks every service shares: database, bus and — when tracked — the revocation list loaded once. */
export function standardReadiness<TSchema extends Record<string, unknown>>(rt: Runtime<TSchema>): Record<string, ReadinessCheck> {
  const revocations = rt.revocations;
  return {
    database: () => rt.database.ping(),
    bus: () => rt.bus.ping(),
    ...(revocations ? { revocations: () => revocations.loader.assertLoaded() } : {}),
  };
}

/** What every `start<Name>Service()` accepts: the environment to read and an optional logger (tests, `npm start`). */
export interface ServiceStartOptions {
  env?: Record<string, string | undefined>;
  logger?: Logger;
}

/**
 * The standard service app: helmet, request context, JSON bodies (unless `json: false`), /healthz and /readyz
 * on database + bus, and /metrics (METRICS_TOKEN) with every request counted by route template.
 */
export function createServiceApp<TSchema extends Record<string, unknown>>(rt: Runtime<TSchema>, opts: { json?: boolean } = {}) {
  return createApp({
    logger: rt.logger,
    readiness: standardReadiness(rt),
    bodyLimit: rt.config.BODY_LIMIT,
    state: rt.state,
    json: opts.json,
    metrics: rt.metrics,
    metricsToken: rt.config.METRICS_TOKEN,
  });
}

/** When `metaUrl` is the process entry point (`tsx <svc>/src/server.ts`), starts the service and handles signals. */
export function runServiceMain(metaUrl: string, name: string, start: () => Promise<ServiceHandle>): void {
  if (!isMain(metaUrl)) return;
  void runMain(async () => {
    const handle = await start();
    handleSignals(handle.close, createLogger(name));
  });
}
