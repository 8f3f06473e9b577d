import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type pg from 'pg';

/**
 * A transaction that starts with `begin` (e.g. `BEGIN; SELECT set_config('role', …, true), …`) in one
 * simple-query round trip, then runs `fn` on a drizzle bound to that connection (one drizzle per pooled
 * client, cached). A failed ROLLBACK drops the connection from the pool. vault-svc and credits-svc scope
 * their row-level security this way.
 */
export function transactionsBeginningWith<TSchema extends Record<string, unknown>>(schema: TSchema) {
  const perClient = new WeakMap<pg.PoolClient, NodePgDatabase<TSchema>>();
  const drizzleFor = (client: pg.PoolClient): NodePgDatabase<TSchema> => {
    let db = perClient.get(client);
    if (!db) {
      db = drizzle(client, { schema });
      perClient.set(client, db);
    }
    return db;
  };
  return async function inTransaction<T>(pool: pg.Pool, begin: string, fn: (tx: NodePgDatabase<TSchema>) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(begin);
      const result = await fn(drizzleFor(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        broken = rollbackErr as Error; // the connection is unusable: drop it from the pool
      }
      throw err;
    } finally {
      client.release(broken);
    }
  };
}
