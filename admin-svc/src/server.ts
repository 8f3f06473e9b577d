import { fileURLToPath } from 'node:url';
import { createRuntime, runServiceMain, serve, type ServiceHandle, type ServiceStartOptions } from '@mana/shared';
import { buildApp } from './app';
import { loadServiceConfig } from './config';
import * as tables from './db/schema';
import { adminDeps } from './deps';
import type { ConsumerDeps } from './events/deps';
import { subscribeErasure } from './events/erasure';
import { subscribeUserRegistered } from './events/user-registered';
import { subscribeUserUpdated } from './events/user-updated';

export const SERVICE_NAME = 'admin-svc';

/** Starts admin-svc: config → migrations → bus → consumers → HTTP. Returns a handle whose close() shuts down in order. */
export async function startAdminService(opts: ServiceStartOptions = {}): Promise<ServiceHandle> {
  const config = loadServiceConfig(opts.env ?? process.env);
  const rt = await createRuntime({
    name: SERVICE_NAME,
    config,
    dbSchema: tables.adminSchema,
    databaseUrl: config.ADMIN_DATABASE_URL ?? config.DATABASE_URL,
    tables,
    migrationsFolder: fileURLToPath(new URL('../drizzle', import.meta.url)),
    outbox: tables.outbox,
    logger: opts.logger,
  });
  const db = rt.database.db;
  const consumers: ConsumerDeps = {
    db,
    bus: rt.bus,
    relay: rt.relay,
    logger: rt.logger.child({ component: 'directory' }),
    defaultTier: config.ACCESS_TIERS[0] ?? 'public',
    pseudonymSecret: config.ADMIN_PSEUDONYM_SECRET,
  };
  await subscribeUserRegistered(consumers);
  await subscribeUserUpdated(consumers);
  await subscribeErasure({ ...consumers, logger: rt.logger.child({ component: 'erasure' }) });
  const deps = adminDeps(config, db, rt.logger, rt.relay);
  return serve(rt, buildApp({ rt, config, deps }), config.ADMIN_SVC_PORT);
}

runServiceMain(import.meta.url, SERVICE_NAME, () => startAdminService());
