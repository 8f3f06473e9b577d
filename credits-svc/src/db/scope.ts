import { sql } from 'drizzle-orm';
import pg from 'pg';
import { transactionsBeginningWith, type Database, type Db } from '@mana/shared';
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

const inScopedTransaction = transactionsBeginningWith(tables);

/**
 * Runs `fn` in a transaction as the credits role with `app.owner` set, so row-level security admits
 * only this wallet's rows. BEGIN and the scope travel in one round trip.
 */
export async function withOwnerScope<T>(db: CreditsDb, owner: Owner, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inTransaction(db, `BEGIN; ${scopeStatement(owner)}`, fn);
}

interface QueuedWrite {
  fn: (tx: Tx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Writes waiting for one wallet in this process; `running` while a batch of them is in the database. */
interface WalletLane {
  running: boolean;
  waiting: QueuedWrite[];
}

const lanes = new WeakMap<CreditsDb, Map<string, WalletLane>>();

/** At most this many writes of one wallet share a transaction. */
const MAX_BATCH = 64;

/**
 * `withOwnerScope` for the writes of one wallet, queued per wallet inside this process. They serialize on
 * the wallet's row lock anyway; a request waiting here holds no pool connection, so a hot wallet cannot take
 * the whole pool (the row lock still orders writers across instances). Writes that queued up while one ran
 * go to the database together: one transaction, each write in its own savepoint (a failing one is rolled
 * back alone and gets its own error), one commit — the commit's disk flush is paid once per batch instead
 * of once per spend (group commit). Every answer waits for that commit, so nothing is acknowledged early.
 */
export function withWalletWrite<T>(db: CreditsDb, owner: Owner, fn: (tx: Tx) => Promise<T>): Promise<T> {
  let perDb = lanes.get(db);
  if (!perDb) lanes.set(db, (perDb = new Map<string, WalletLane>()));
  let lane = perDb.get(owner);
  if (!lane) perDb.set(owner, (lane = { running: false, waiting: [] }));
  const queued = new Promise<T>((resolve, reject) => {
    lane.waiting.push({ fn, resolve: resolve as (value: unknown) => void, reject });
  });
  if (!lane.running) void drainLane(db, owner, lane, perDb);
  return queued;
}

async function drainLane(db: CreditsDb, owner: Owner, lane: WalletLane, perDb: Map<string, WalletLane>): Promise<void> {
  lane.running = true;
  while (lane.waiting.length > 0) await runBatch(db, owner, lane.waiting.splice(0, MAX_BATCH));
  lane.running = false;
  perDb.delete(owner);
}

async function runBatch(db: CreditsDb, owner: Owner, batch: QueuedWrite[]): Promise<void> {
  const [only] = batch;
  if (batch.length === 1 && only) {
    await withOwnerScope(db, owner, only.fn).then(only.resolve, only.reject);
    return;
  }
  const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
  try {
    await withOwnerScope(db, owner, async (tx) => {
      for (const write of batch) {
        await tx.execute(sql`savepoint wallet_write`);
        try {
          const value = await write.fn(tx);
          await tx.execute(sql`release savepoint wallet_write`);
          outcomes.push({ ok: true, value });
        } catch (err) {
          await tx.execute(sql`rollback to savepoint wallet_write`);
          outcomes.push({ ok: false, err });
        }
      }
    });
  } catch (err) {
    // The commit (or the connection) failed: none of the batch happened.
    for (const write of batch) write.reject(err);
    return;
  }
  batch.forEach((write, i) => {
    const outcome = outcomes[i];
    if (outcome?.ok) write.resolve(outcome.value);
    else write.reject(outcome?.err);
  });
}

/** The credits role with no owner in scope: only the SECURITY DEFINER functions see across wallets. */
export async function withAppRole<T>(db: CreditsDb, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inTransaction(db, `BEGIN; SELECT set_config('role', '${APP_ROLE}', true)`, fn);
}

function inTransaction<T>(db: CreditsDb, begin: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inScopedTransaction(db.$client, begin, fn);
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
