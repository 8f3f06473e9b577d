import { createHash } from 'node:crypto';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import type { Logger } from 'pino';
import { causeChain } from '../errors';

export type Db<TSchema extends Record<string, unknown> = Record<string, never>> = NodePgDatabase<TSchema>;

export interface DatabaseOptions<TSchema extends Record<string, unknown>> {
  url: string;
  schema?: TSchema;
  max?: number;
  applicationName?: string;
  logger?: Logger;
}

export interface Database<TSchema extends Record<string, unknown>> {
  pool: pg.Pool;
  db: NodePgDatabase<TSchema>;
  ping: () => Promise<void>;
  close: () => Promise<void>;
}

export function createDatabase<TSchema extends Record<string, unknown> = Record<string, never>>(
  opts: DatabaseOptions<TSchema>,
): Database<TSchema> {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max ?? 10,
    application_name: opts.applicationName,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // A client losing its connection (PostgreSQL restarted, an administrator's pg_terminate_backend, a test
  // dropping its database) must not crash the process: the pool reports idle clients; a checked-out
  // client has no listener of the pool's, so each client gets one of its own (its query still fails).
  pool.on('error', (err) => opts.logger?.warn({ err: err.message }, 'idle database client error'));
  pool.on('connect', (client) => {
    client.on('error', (err) => opts.logger?.warn({ err: err.message }, 'database client error'));
  });
  const db = drizzle(pool, { schema: opts.schema ?? ({} as TSchema) });
  let closed = false;
  return {
    pool,
    db,
    ping: async () => {
      await pool.query('select 1');
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

function lockKey(schema: string): bigint {
  return createHash('sha256').update(`mana-migrate:${schema}`).digest().readBigInt64BE(0);
}

export interface MigrationOptions {
  folder: string;
  schema: string;
  logger?: Logger;
  /**
   * How long one statement of a migration may wait for a table lock (`lock_timeout`, default 5 s). A migration's
   * ALTER TABLE waits for ACCESS EXCLUSIVE behind every open transaction on the table, and every later query of
   * the table queues behind it: a rolling upgrade next to one long transaction would stall the old instances'
   * traffic for as long as it lasts. Past the timeout the migration's transaction rolls back (nothing half
   * applied), the queue drains, and it tries again.
   */
  lockTimeoutMs?: number;
  /** Tries in all before the start fails (default 10), a second more between each than before the last. */
  attempts?: number;
}

/** SQLSTATE 55P03 lock_not_available: a statement gave up waiting for a lock (`lock_timeout`). */
function isLockTimeout(err: unknown): boolean {
  for (const { code } of causeChain(err)) if (code === '55P03') return true;
  return false;
}

/**
 * Applies the committed drizzle-kit migrations of one service, all pending ones in one transaction. The migration
 * table lives in the service's own schema; an advisory lock lets several instances start at once (its wait is not
 * bounded: another instance is migrating). Table locks are waited for `lockTimeoutMs` at a time (see there).
 */
export async function runMigrations(pool: pg.Pool, opts: MigrationOptions): Promise<void> {
  const attempts = opts.attempts ?? 10;
  const client = await pool.connect();
  /** Set when anything failed: the connection is then closed, not pooled (it may still hold the lock or the setting). */
  let broken: unknown;
  try {
    const key = lockKey(opts.schema).toString();
    await client.query('select pg_advisory_lock($1::bigint)', [key]);
    try {
      await client.query(`select set_config('lock_timeout', $1, false)`, [`${opts.lockTimeoutMs ?? 5000}ms`]);
      for (let attempt = 1; ; attempt++) {
        try {
          await migrate(drizzle(client), {
            migrationsFolder: opts.folder,
            migrationsSchema: opts.schema,
            migrationsTable: '__drizzle_migrations',
          });
          break;
        } catch (err) {
          if (!isLockTimeout(err) || attempt >= attempts) throw err;
          opts.logger?.warn({ schema: opts.schema, attempt }, 'a migration gave up waiting for a table lock; trying again');
          await new Promise((resolve) => setTimeout(resolve, attempt * 1000));
        }
      }
      opts.logger?.info({ schema: opts.schema }, 'migrations applied');
    } finally {
      await client.query('reset lock_timeout').catch((err: unknown) => (broken ??= err));
      await client.query('select pg_advisory_unlock($1::bigint)', [key]).catch((err: unknown) => (broken ??= err));
    }
  } catch (err) {
    broken ??= err;
    throw err;
  } finally {
    client.release(broken === undefined ? undefined : true);
  }
}

/** Picks the per-service URL (e.g. VAULT_DATABASE_URL) over the shared DATABASE_URL. */
export function databaseUrlFor(service: string, env: Record<string, string | undefined>): string | undefined {
  const specific = env[`${service.toUpperCase().replace(/-SVC$/, '').replace(/-/g, '_')}_DATABASE_URL`];
  return specific || env.DATABASE_URL || undefined;
}
export * from './begin-with';
export * from './service-roles';
