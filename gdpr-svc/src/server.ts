import { fileURLToPath } from 'node:url';
import { createLogger, createRuntime, jwtIssuer, runServiceMain, serve, type ServiceHandle, type ServiceStartOptions } from '@mana/shared';
import { buildApp } from './app';
import { loadServiceConfig } from './config';
import * as tables from './db/schema';
import { gdprService } from './domain/gdpr';
import { ensureSigningKey } from './domain/keys';
import { ErasureRedriver } from './domain/redrive';
import { deriveSecrets } from './domain/secrets';
import { createSources } from './domain/sources';
import { subscribeErasureCompleted } from './events/erasure-completed';
import { gdprMetrics } from './metrics';

export const SERVICE_NAME = 'gdpr-svc';

/** Starts gdpr-svc: config → migrations → receipt key → bus → consumer + re-drive loop → HTTP. */
export async function startGdprService(opts: ServiceStartOptions = {}): Promise<ServiceHandle> {
  const config = loadServiceConfig(opts.env ?? process.env);
  const logger = opts.logger ?? createLogger(SERVICE_NAME, config.LOG_LEVEL);
  const rt = await createRuntime({
    name: SERVICE_NAME,
    config,
    dbSchema: tables.gdprSchema,
    databaseUrl: config.GDPR_DATABASE_URL ?? config.DATABASE_URL,
    tables,
    migrationsFolder: fileURLToPath(new URL('../drizzle', import.meta.url)),
    outbox: tables.outbox,
    logger,
    // The outbox relay shares the pool with the request handlers: a burst of erasures must not queue it out.
    poolSize: 20,
  });
  const db = rt.database.db;
  const secrets = deriveSecrets(config.GDPR_SECRET);
  const key = await ensureSigningKey(db, secrets.sealKey);
  logger.info({ kid: key.kid }, 'erasure receipt key ready');
  const sources = createSources(config, logger.child({ component: 'sources' }));
  await subscribeErasureCompleted({
    db,
    bus: rt.bus,
    sealKey: secrets.sealKey,
    issuer: `${jwtIssuer(config)}/api/v1/gdpr`,
    logger: logger.child({ component: 'erasure' }),
  });
  const stopMetrics = gdprMetrics(rt.metrics, db);
  const redriver = new ErasureRedriver(db, config.ERASURE_RETRY_MS, rt.relay, logger.child({ component: 'erasure-redrive' }));
  redriver.start();
  const gdpr = gdprService({
    db,
    relay: rt.relay,
    logger,
    fetchers: sources.fetchers,
    sourceTimeoutMs: config.GDPR_SOURCE_TIMEOUT_MS,
    exportsPerHour: config.GDPR_EXPORTS_PER_HOUR,
    erasure: {
      participants: config.ERASURE_PARTICIPANTS,
      retryMs: config.ERASURE_RETRY_MS,
      deadlineHours: config.ERASURE_DEADLINE_HOURS,
      secrets,
      baseUrl: config.BASE_URL,
    },
  });
  return serve(rt, buildApp({ rt, config, gdpr }), config.GDPR_SVC_PORT, [
    { name: 'stop erasure re-drive', run: () => redriver.stop() },
    { name: 'stop business metrics', run: async () => stopMetrics() },
    { name: 'close sync database pool', run: () => sources.close() },
  ]);
}

runServiceMain(import.meta.url, SERVICE_NAME, () => startGdprService());
