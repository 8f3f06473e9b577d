import { createHash } from 'node:crypto';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import type { Logger } from 'pino';

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

/**
 * Applies the committed drizzle-kit migrations of one service. The migration table lives in the
 * service's own schema; an advisory lock lets several instances start at once.
 */
export async function runMigrations(pool: pg.Pool, opts: { folder: string; schema: string; logger?: Logger }): Promise<void> {
  const client = await pool.connect();
  try {
    const key = lockKey(opts.schema).toString();
    await client.query('select pg_advisory_lock($1::bigint)', [key]);
    try {
      await migrate(drizzle(client), {
        migrationsFolder: opts.folder,
        migrationsSchema: opts.schema,
        migrationsTable: '__drizzle_migrations',
      });
      opts.logger?.info({ schema: opts.schema }, 'migrations applied');
    } finally {
      await client.query('select pg_advisory_unlock($1::bigint)', [key]);
    }
  } finally {
    client.release();
  }
}

/** Picks the per-service URL (e.g. VAULT_DATABASE_URL) over the shared DATABASE_URL. */
export function databaseUrlFor(service: string, env: Record<string, string | undefined>): string | undefined {
  const specific = env[`${service.toUpperCase().replace(/-SVC$/, '').replace(/-/g, '_')}_DATABASE_URL`];
  return specific || env.DATABASE_URL || undefined;
}
export * from './begin-with';
export * from './service-roles';
