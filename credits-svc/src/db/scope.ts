import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Database, Db } from '@mana/shared';
import * as tables from './schema';

/** A connection inside an owner-scoped transaction (see withOwnerScope). */
export type Tx = Db<typeof tables>;
/** The service's drizzle database together with its pool. */
export type CreditsDb = Tx & { $client: pg.Pool };

export function creditsDb(database: Database<typeof tables>): CreditsDb {
  return Object.assign(database.db, { $client: database.pool });
}

/** The non-superuser, non-BYPASSRLS role every credits query runs as (migration 0003_rls). */
export const APP_ROLE = 'credits_app';

/** A wallet owner: `user:<userId>` or `org:<organizationId>`. */
export type Owner = `user:${string}` | `org:${string}`;

/** Control characters never belong in an id; the `erased:` namespace belongs to pseudonyms. */
// eslint-disable-next-line no-control-regex
const ID = /^[^\u0000-\u001f\u007f]{1,256}$/;

export class InvalidOwnerError extends Error {
  readonly code = 'INVALID_OWNER';
  constructor() {
    super('refusing an empty, malformed or reserved (erased:…) wallet owner');
    this.name = 'InvalidOwnerError';
  }
}

export function isId(id: unknown): id is string {
  return typeof id === 'string' && ID.test(id) && !id.startsWith('erased:');
}

export const userOwner = (userId: string): Owner => {
  if (!isId(userId)) throw new InvalidOwnerError();
  return `user:${userId}`;
};
export const orgOwner = (orgId: string): Owner => {
  if (!isId(orgId)) throw new InvalidOwnerError();
  return `org:${orgId}`;
};

/** The statement that enters an owner's scope: role and owner both transaction-local. */
export function scopeStatement(owner: Owner): string {
  if (!/^(user|org):/.test(owner) || !isId(owner.slice(owner.indexOf(':') + 1))) throw new InvalidOwnerError();
  return `SELECT set_config('role', '${APP_ROLE}', true), set_config('app.owner', ${pg.escapeLiteral(owner)}, true)`;
}

const perClient = new WeakMap<pg.PoolClient, Tx>();

function drizzleFor(client: pg.PoolClient): Tx {
  let db = perClient.get(client);
  if (!db) {
    db = drizzle(client, { schema: tables });
    perClient.set(client, db);
  }
  return db;
}

/**
 * Runs `fn` in a transaction as the credits role with `app.owner` set, so row-level security admits
 * only this wallet's rows. BEGIN and the scope travel in one round trip.
 */
export async function withOwnerScope<T>(db: CreditsDb, owner: Owner, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inTransaction(db, `BEGIN; ${scopeStatement(owner)}`, fn);
}

const queues = new WeakMap<CreditsDb, Map<string, Promise<unknown>>>();

/**
 * `withOwnerScope` for the writes of one wallet, queued per wallet inside this process: they serialize on the
 * wallet's row lock anyway, and a request waiting here holds no pool connection, so a hot wallet cannot take
 * the whole pool and starve every other wallet (the row lock still orders writers across instances).
 */
export async function withWalletWrite<T>(db: CreditsDb, owner: Owner, fn: (tx: Tx) => Promise<T>): Promise<T> {
  let perDb = queues.get(db);
  if (!perDb) queues.set(db, (perDb = new Map<string, Promise<unknown>>()));
  const previous = perDb.get(owner) ?? Promise.resolve();
  const run = previous.then(
    () => withOwnerScope(db, owner, fn),
    () => withOwnerScope(db, owner, fn),
  );
  const tail = run.catch(() => undefined);
  perDb.set(owner, tail);
  void tail.then(() => {
    if (perDb.get(owner) === tail) perDb.delete(owner);
  });
  return run;
}

/** The credits role with no owner in scope: only the SECURITY DEFINER functions see across wallets. */
export async function withAppRole<T>(db: CreditsDb, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inTransaction(db, `BEGIN; SELECT set_config('role', '${APP_ROLE}', true)`, fn);
}

async function inTransaction<T>(db: CreditsDb, begin: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const client = await db.$client.connect();
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
      broken = rollbackErr as Error;
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Enters an owner's scope inside an existing transaction (consumers, the webhook). */
export async function enterOwnerScope(tx: { execute: Tx['execute'] }, owner: Owner): Promise<void> {
  await tx.execute(sql.raw(scopeStatement(owner)));
}

/** Back to the connection's own role inside the same transaction. */
export async function leaveOwnerScope(tx: { execute: Tx['execute'] }): Promise<void> {
  await tx.execute(sql`reset role`);
  await tx.execute(sql`select set_config('app.owner', '', true)`);
}
