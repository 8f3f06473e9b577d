import { sql } from 'drizzle-orm';
import type { Db } from '@mana/shared';
import type * as tables from './schema';

export type AdminDb = Db<typeof tables>;
/** A transaction of the service; `execute`, `select`, `insert`… as on the pool. */
export type Tx = Parameters<Parameters<AdminDb['transaction']>[0]>[0];
/** Either (the erasure helper's transaction is typed loosely). */
export type Conn = Pick<Tx, 'execute' | 'select' | 'insert' | 'update' | 'delete'>;

/** The non-superuser role every admin-svc transaction runs as (migration 0003): the audit log is append-only for it. */
export const APP_ROLE = 'admin_app';

/** Switches the current transaction to the service role; it ends with the transaction. */
export async function enterAppRole(tx: Pick<Tx, 'execute'>): Promise<void> {
  await tx.execute(sql.raw(`SET LOCAL ROLE ${APP_ROLE}`));
}

/** Runs `fn` in a transaction as `admin_app`. */
export function asApp<T>(db: AdminDb, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await enterAppRole(tx);
    return fn(tx);
  });
}
