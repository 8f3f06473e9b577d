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

/**
 * `withOwnerScope` for a read of several statements that must agree with each other (a GDPR export: the wallet, its
 * lots and its ledger): one REPEATABLE READ snapshot for all of them, read-only. Under READ COMMITTED each statement
 * would see the commits made since the one before, and a spend between two of them would tear the answer.
 */
export async function readOwnerSnapshot<T>(db: CreditsDb, owner: Owner, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inTransaction(db, `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ${scopeStatement(owner)}`, fn);
}

interface QueuedWrite {
  fn: (tx: Tx) => Promise<unknown>;
  atomic: boolean;
  alone?: () => Promise<unknown>;
  claim?: WalletWriteClaim;
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
export interface WalletWriteOptions {
  /**
   * The write either changes everything or nothing and never leaves the transaction aborted, even when it fails
   * (the spend: `credits.try_spend` and a savepoint of its own around the rare TypeScript path). It runs in a batch
   * without the savepoint round trips around it.
   */
  atomic?: boolean;
  /**
   * The write done alone (no other write of the wallet waiting) in one round trip of its own — or undefined when it
   * cannot be (then `fn` runs as usual). See `runAloneInOwnerScope`.
   */
  alone?: () => Promise<unknown>;
  /**
   * What the write claims before it takes the wallet's row lock (an organization's write: its actor, `claimActor`).
   * In a batch every distinct claim runs first, in key order, before any write takes the wallet's lock: a claim that
   * waits (an erasure in flight) then holds up no writer of the wallet, and a batch meets a batch erasure (which takes
   * its users' locks in user id order) in the same order, never the opposite one. A claim that throws fails its own
   * writes only; the write itself still claims again (at once: the lock is held).
   */
  claim?: WalletWriteClaim;
}

export interface WalletWriteClaim {
  /** Writes with the same key share one claim; claims run in ascending key order (the erasure's user id order). */
  key: string;
  run: (tx: Tx) => Promise<void>;
}

export function withWalletWrite<T>(db: CreditsDb, owner: Owner, fn: (tx: Tx) => Promise<T>, opts: WalletWriteOptions = {}): Promise<T> {
  let perDb = lanes.get(db);
  if (!perDb) lanes.set(db, (perDb = new Map<string, WalletLane>()));
  let lane = perDb.get(owner);
  if (!lane) perDb.set(owner, (lane = { running: false, waiting: [] }));
  const queued = new Promise<T>((resolve, reject) => {
    lane.waiting.push({
      fn,
      atomic: opts.atomic === true,
      alone: opts.alone,
      claim: opts.claim,
      resolve: resolve as (value: unknown) => void,
      reject,
    });
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
    await runAlone(db, owner, only).then(only.resolve, only.reject);
    return;
  }
  const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
  try {
    await withOwnerScope(db, owner, async (tx) => {
      const refused = await claimAll(tx, batch);
      for (const write of batch) {
        const claimErr = write.claim && refused.get(write.claim.key);
        if (claimErr) {
          outcomes.push({ ok: false, err: claimErr.err });
          continue;
        }
        if (write.atomic) {
          try {
            outcomes.push({ ok: true, value: await write.fn(tx) });
          } catch (err) {
            // A database error from an atomic write breaks its promise: the transaction may be aborted.
            if (isDatabaseError(err)) throw new BrokenBatch(err);
            outcomes.push({ ok: false, err });
          }
          continue;
        }
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
    // Rolled back: none of the batch happened. After a broken atomic write, each write runs alone instead.
    if (err instanceof BrokenBatch) {
      for (const write of batch) await withOwnerScope(db, owner, write.fn).then(write.resolve, write.reject);
      return;
    }
    // The commit (or the connection) failed.
    for (const write of batch) write.reject(err);
    return;
  }
  batch.forEach((write, i) => {
    const outcome = outcomes[i];
    if (outcome?.ok) write.resolve(outcome.value);
    else write.reject(outcome?.err);
  });
}

/**
 * The batch's distinct claims, in key order, before any write takes the wallet's lock; the ones refused (an erased
 * actor), by key. A database error breaks the batch (the transaction may be aborted): each write then runs alone.
 */
async function claimAll(tx: Tx, batch: QueuedWrite[]): Promise<Map<string, { err: unknown }>> {
  const claims = new Map<string, WalletWriteClaim>();
  for (const { claim } of batch) if (claim && !claims.has(claim.key)) claims.set(claim.key, claim);
  const refused = new Map<string, { err: unknown }>();
  for (const key of [...claims.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    try {
      await claims.get(key)?.run(tx);
    } catch (err) {
      if (isDatabaseError(err)) throw new BrokenBatch(err);
      refused.set(key, { err });
    }
  }
  return refused;
}

/**
 * One read in an owner's scope in a single round trip: the scope statement and `select` travel as one simple query,
 * which PostgreSQL runs as one implicit transaction (so the transaction-local role and owner hold for the select and
 * end with it). The simple protocol has no parameters: `select` must quote every value (`pg.escapeLiteral`).
 */
export async function readInOwnerScope<R extends pg.QueryResultRow>(db: CreditsDb, owner: Owner, select: string): Promise<R[]> {
  const results = (await db.$client.query(`${scopeStatement(owner)}; ${select}`)) as unknown as pg.QueryResult<R>[];
  return results[results.length - 1]?.rows ?? [];
}

async function runAlone(db: CreditsDb, owner: Owner, write: QueuedWrite): Promise<unknown> {
  const done = write.alone ? await write.alone() : undefined;
  return done !== undefined ? done : withOwnerScope(db, owner, write.fn);
}

/**
 * A whole transaction in one round trip: BEGIN, the owner's scope, `statement` and COMMIT as one simple query.
 * Answers the rows of `statement`. The simple protocol has no parameters: `statement` must quote every value
 * (`pg.escapeLiteral`). A failure rolls back before the connection goes back to the pool.
 */
export async function runAloneInOwnerScope<R extends pg.QueryResultRow>(db: CreditsDb, owner: Owner, statement: string): Promise<R[]> {
  const client = await db.$client.connect();
  let broken: Error | undefined;
  try {
    const results = (await client.query(`BEGIN; ${scopeStatement(owner)}; ${statement}; COMMIT`)) as unknown as pg.QueryResult<R>[];
    return results[2]?.rows ?? [];
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
      broken = rollbackErr as Error; // the connection is unusable: drop it from the pool
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

class BrokenBatch extends Error {
  constructor(cause: unknown) {
    super('an atomic wallet write failed in the database', { cause });
  }
}

/** An error PostgreSQL answered (it carries an SQLSTATE). */
function isDatabaseError(err: unknown): boolean {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
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
  // Role `none` is RESET ROLE (the connection's own); one statement for both.
  await tx.execute(sql`select set_config('role', 'none', true), set_config('app.owner', '', true)`);
}
