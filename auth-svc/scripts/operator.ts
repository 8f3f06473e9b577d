import { OutboxRelay, createBusFromConfig, createDatabase, createLogger, runMigrations } from '@mana/shared';
import { fileURLToPath } from 'node:url';
import type { Auth } from '../src/auth/auth';
import { loadServiceConfig, type Config } from '../src/config';
import * as tables from '../src/db/schema';
import type { Db } from '../src/db/types';

export interface OperatorContext {
  config: Config;
  db: Db;
  /** Better Auth, built on first use: most commands need only the database (and start faster without it). */
  auth: () => Promise<Auth>;
  /** Publishes what the command wrote to the outbox (when AMQP_URL is set), then closes everything. */
  finish: () => Promise<void>;
}

/** The environment, database and Better Auth instance an operator command works with. */
export async function operatorContext(env: Record<string, string | undefined> = process.env): Promise<OperatorContext> {
  const config = loadServiceConfig(env);
  const logger = createLogger('auth-svc-cli', config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL);
  const url = config.AUTH_DATABASE_URL ?? config.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL (or AUTH_DATABASE_URL) is required');
  const database = createDatabase({ url, schema: tables, logger, applicationName: 'auth-svc-cli', max: 2 });
  await runMigrations(database.pool, { folder: fileURLToPath(new URL('../drizzle', import.meta.url)), schema: 'auth', logger });
  let auth: Auth | undefined;
  return {
    config,
    db: database.db,
    auth: async () => {
      const { createAuth } = await import('../src/auth/auth');
      const mailer = { send: async () => undefined, close: () => undefined };
      auth ??= createAuth({ config, db: database.db, mailer, logger, onOutboxWrite: () => undefined });
      return auth;
    },
    finish: async () => {
      try {
        if (config.AMQP_URL) {
          const bus = createBusFromConfig(config, logger);
          await bus.start();
          try {
            await bus.waitForConnection(5_000);
            await new OutboxRelay({ db: database.db, outbox: tables.outbox, bus, logger }).drain();
          } catch {
            process.stderr.write('broker unreachable: the running auth-svc will publish the events from its outbox\n');
          } finally {
            await bus.close();
          }
        }
      } finally {
        await database.close();
      }
    },
  };
}
