import { fileURLToPath } from 'node:url';
import { createRuntime, handleSignals, isMain, runMain, serve, type ServiceHandle } from '@mana/shared';
import type { Logger } from 'pino';
import { buildApp } from './app';
import { loadServiceConfig } from './config';
import * as tables from './db/schema';

export const SERVICE_NAME = 'vault-svc';

export interface StartOptions {
  env?: Record<string, string | undefined>;
  logger?: Logger;
}

/** Starts vault-svc: config → migrations → bus → HTTP. Returns a handle whose close() shuts down in order. */
export async function startVaultService(opts: StartOptions = {}): Promise<ServiceHandle> {
  const env = opts.env ?? process.env;
  const config = loadServiceConfig(env);
  const rt = await createRuntime({
    name: SERVICE_NAME,
    config,
    dbSchema: tables.vaultSchema,
    databaseUrl: config.VAULT_DATABASE_URL ?? config.DATABASE_URL,
    tables,
    migrationsFolder: fileURLToPath(new URL('../drizzle', import.meta.url)),
    outbox: tables.outbox,
    logger: opts.logger,
  });
  const app = buildApp({ rt, config });
  return serve(rt, app, config.VAULT_SVC_PORT);
}

if (isMain(import.meta.url)) {
  void runMain(async () => {
    const handle = await startVaultService();
    handleSignals(handle.close, (await import('@mana/shared')).createLogger(SERVICE_NAME));
  });
}
