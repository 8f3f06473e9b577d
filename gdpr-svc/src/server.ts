import { fileURLToPath } from 'node:url';
import { createRuntime, runServiceMain, serve, type ServiceHandle, type ServiceStartOptions } from '@mana/shared';
import { buildApp } from './app';
import { loadServiceConfig } from './config';
import * as tables from './db/schema';

export const SERVICE_NAME = 'gdpr-svc';

/** Starts gdpr-svc: config → migrations → bus → HTTP. Returns a handle whose close() shuts down in order. */
export async function startGdprService(opts: ServiceStartOptions = {}): Promise<ServiceHandle> {
  const config = loadServiceConfig(opts.env ?? process.env);
  const rt = await createRuntime({
    name: SERVICE_NAME,
    config,
    dbSchema: tables.gdprSchema,
    databaseUrl: config.GDPR_DATABASE_URL ?? config.DATABASE_URL,
    tables,
    migrationsFolder: fileURLToPath(new URL('../drizzle', import.meta.url)),
    outbox: tables.outbox,
    logger: opts.logger,
  });
  return serve(rt, buildApp({ rt }), config.GDPR_SVC_PORT);
}

runServiceMain(import.meta.url, SERVICE_NAME, () => startGdprService());
