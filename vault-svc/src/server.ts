import { fileURLToPath } from 'node:url';
import { createLogger, createRuntime, runServiceMain, serve, type ServiceHandle, type ServiceStartOptions } from '@mana/shared';
import { buildApp } from './app';
import { loadServiceConfig } from './config';
import * as tables from './db/schema';
import { FetchAuditBatcher } from './db/fetch-audit';
import { vaultDb } from './db/scope';
import { loadKeyring } from './domain/kek';
import { subscribeErasure } from './events/erasure';
import { vaultMetrics } from './metrics';

export const SERVICE_NAME = 'vault-svc';

/** Starts vault-svc: config + KEKs (fail closed at boot) → migrations → bus → consumers → HTTP. */
export async function startVaultService(opts: ServiceStartOptions = {}): Promise<ServiceHandle> {
  const env = opts.env ?? process.env;
  const config = loadServiceConfig(env);
  const logger = opts.logger ?? createLogger(SERVICE_NAME, config.LOG_LEVEL);
  const keyring = loadKeyring(config, logger);
  logger.info({ keks: keyring.toJSON() }, 'key-encryption keys loaded');
  const rt = await createRuntime({
    name: SERVICE_NAME,
    config,
    dbSchema: tables.vaultSchema,
    databaseUrl: config.VAULT_DATABASE_URL ?? config.DATABASE_URL,
    tables,
    migrationsFolder: fileURLToPath(new URL('../drizzle', import.meta.url)),
    outbox: tables.outbox,
    logger,
  });
  const db = vaultDb(rt.database);
  const fetchAudit = new FetchAuditBatcher(db, {
    durable: config.VAULT_DURABLE_FETCH_AUDIT,
    logger: logger.child({ component: 'fetch-audit' }),
  });
  await subscribeErasure({
    db,
    bus: rt.bus,
    relay: rt.relay,
    logger: logger.child({ component: 'erasure' }),
    pseudonymSecret: config.VAULT_PSEUDONYM_SECRET,
  });
  const stopMetrics = vaultMetrics(rt.metrics, db, keyring, { rotatedAt: config.MANA_AUTH_KEK_ROTATED_AT });
  const app = buildApp({ rt, config, keyring, fetchAudit });
  return serve(rt, app, config.VAULT_SVC_PORT, [
    { name: 'flush fetch audit rows', run: () => fetchAudit.drain() },
    { name: 'stop business metrics', run: async () => stopMetrics() },
  ]);
}

runServiceMain(import.meta.url, SERVICE_NAME, () => startVaultService());
