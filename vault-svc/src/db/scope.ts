import { sql } from 'drizzle-orm';
import type { Db } from '@mana/shared';
import type * as tables from './schema';

export type VaultDb = Db<typeof tables>;
export type Tx = Parameters<Parameters<VaultDb['transaction']>[0]>[0];

/** The non-superuser, non-BYPASSRLS role every vault query runs as (created by migration 0002_rls). */
export const APP_ROLE = 'vault_app';

export class EmptyUserIdError extends Error {
  constructor() {
    super('withUserScope: refusing an empty user id');
    this.name = 'EmptyUserIdError';
  }
}

export interface ScopeOptions {
  /**
   * `false` commits without waiting for the WAL flush (synchronous_commit = off for this transaction only).
   * Used for the audit row of a key fetch, the hot path; see the README's threat-model notes.
   */
  durable?: boolean;
}

/**
 * Runs `fn` in a transaction that has switched to the vault role and set `app.current_user_id`, so the
 * row-level-security policies admit only this user's rows. Both settings are transaction-local
 * (`set_config(..., true)`): they end with the transaction and never leak to the next pool user.
 * An empty user id is refused before any query.
 */
export async function withUserScope<T>(db: VaultDb, userId: string, fn: (tx: Tx) => Promise<T>, opts: ScopeOptions = {}): Promise<T> {
  if (typeof userId !== 'string' || userId.length === 0) throw new EmptyUserIdError();
  return db.transaction(async (tx) => {
    await enterUserScope(tx, userId, opts);
    return fn(tx);
  });
}

/** Enters the user scope inside an existing transaction (the erasure consumer's consumeOnce transaction). */
export async function enterUserScope(tx: Pick<Tx, 'execute'>, userId: string, opts: ScopeOptions = {}): Promise<void> {
  if (typeof userId !== 'string' || userId.length === 0) throw new EmptyUserIdError();
  await tx.execute(
    opts.durable === false
      ? sql`select set_config('role', ${APP_ROLE}, true), set_config('app.current_user_id', ${userId}, true), set_config('synchronous_commit', 'off', true)`
      : sql`select set_config('role', ${APP_ROLE}, true), set_config('app.current_user_id', ${userId}, true)`,
  );
}

/** Leaves the vault role again (back to the connection's own role) inside the same transaction. */
export async function leaveUserScope(tx: Pick<Tx, 'execute'>): Promise<void> {
  await tx.execute(sql`reset role`);
  await tx.execute(sql`select set_config('app.current_user_id', '', true)`);
}

/**
 * A transaction as the vault role with no user in scope: RLS shows no row at all. Only the narrow
 * SECURITY DEFINER functions of migration 0002 (user ids and KEK ids, never key material) see across users.
 */
export async function withAppRole<T>(db: VaultDb, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select set_config('role', ${APP_ROLE}, true)`);
    return fn(tx);
  });
}
