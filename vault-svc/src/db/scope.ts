import { sql } from 'drizzle-orm';
import pg from 'pg';
import { transactionsBeginningWith, type Database, type Db } from '@mana/shared';
import * as tables from './schema';

/** A connection inside a user-scoped transaction (see withUserScope). */
export type Tx = Db<typeof tables>;
/** The service's drizzle database together with its pool (the hot paths talk to the pool directly). */
export type VaultDb = Tx & { $client: pg.Pool };

export function vaultDb(database: Database<typeof tables>): VaultDb {
  return Object.assign(database.db, { $client: database.pool });
}

/** The non-superuser, non-BYPASSRLS role every vault query runs as (created by migration 0002_rls). */
export const APP_ROLE = 'vault_app';

/** Control characters never belong in a user id (and NUL cannot reach PostgreSQL text at all). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point of this pattern
const USER_ID = /^[^\u0000-\u001f\u007f]{1,256}$/;

export class InvalidUserIdError extends Error {
  readonly code = 'INVALID_USER_ID';
  constructor() {
    super('refusing an empty, malformed or reserved (erased:…) user id');
    this.name = 'InvalidUserIdError';
  }
}

/** Audit rows of erased users carry `erased:<uuid>`; no live user may ever be scoped to that namespace. */
const PSEUDONYM = /^erased:/;

export function isUserId(userId: unknown): userId is string {
  return typeof userId === 'string' && USER_ID.test(userId) && !PSEUDONYM.test(userId);
}

export function assertUserId(userId: unknown): asserts userId is string {
  if (!isUserId(userId)) throw new InvalidUserIdError();
}

/**
 * The statement that enters a user's scope: the vault role and the user id, both transaction-local
 * (`set_config(..., true)`), so they end with the transaction and never leak to the next pool user.
 * The id is a literal (pg's escapeLiteral) so that BEGIN and the scope travel in one simple-query round trip.
 */
export function scopeStatement(userId: string): string {
  assertUserId(userId);
  return `SELECT set_config('role', '${APP_ROLE}', true), set_config('app.current_user_id', ${pg.escapeLiteral(userId)}, true)`;
}

const inScopedTransaction = transactionsBeginningWith(tables);

/**
 * Runs `fn` in a transaction that has switched to the vault role and set `app.current_user_id`, so the
 * row-level-security policies admit only this user's rows. An empty or malformed user id is refused
 * before any query (before a connection is even taken from the pool).
 */
export async function withUserScope<T>(db: VaultDb, userId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inTransaction(db, `BEGIN; ${scopeStatement(userId)}`, fn);
}

function inTransaction<T>(db: VaultDb, begin: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inScopedTransaction(db.$client, begin, fn);
}

/** Enters the user scope inside an existing transaction (the erasure consumer's consumeOnce transaction). */
export async function enterUserScope(tx: { execute: Tx['execute'] }, userId: string): Promise<void> {
  await tx.execute(sql.raw(scopeStatement(userId)));
}

/** Leaves the vault role again (back to the connection's own role) inside the same transaction. */
export async function leaveUserScope(tx: { execute: Tx['execute'] }): Promise<void> {
  await tx.execute(sql`reset role`);
  await tx.execute(sql`select set_config('app.current_user_id', '', true)`);
}

/**
 * A transaction as the vault role with no user in scope: RLS shows no row at all. Only the narrow
 * SECURITY DEFINER functions of migration 0002 (user ids and KEK ids, never key material) see across users.
 */
export async function withAppRole<T>(db: VaultDb, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inTransaction(db, `BEGIN; SELECT set_config('role', '${APP_ROLE}', true)`, fn);
}
