import { randomUUID } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import pg from 'pg';
import { ledgerTransactions } from '../db/schema';
import { runAloneInOwnerScope, type CreditsDb, type Owner, type Tx } from '../db/scope';
import { CREDITS_ERRORS } from './errors';
import { burn, lockWallet, maintain, post, saveWallet, type LedgerPolicy, type LedgerTransaction } from './ledger';
import { requestHash } from './request-hash';

export interface SpendInput {
  owner: Owner;
  /** The user who spends (the caller, or the user a backend charges). */
  actor: string;
  amount: number;
  appId: string;
  description: string;
  idempotencyKey?: string;
  metadata?: Record<string, unknown>;
}

export interface SpendResult {
  body: {
    transaction: { id: string; amount: number; appId: string | null; description: string | null; balanceAfter: number; createdAt: string };
    balance: number;
  };
  /** True when the idempotency key had been used with this request before: nothing was debited now. */
  replayed: boolean;
}

/** Not enough credit: nothing was debited; `insufficient` is the available balance. */
export interface Insufficient {
  insufficient: number;
}

/** Throws 402 INSUFFICIENT_CREDITS for a short wallet (after the transaction committed its refill). */
export function orInsufficient<T extends object>(r: T | Insufficient): T {
  if ('insufficient' in r) throw CREDITS_ERRORS.insufficientCredits(r.insufficient);
  return r;
}

type Answered = Pick<LedgerTransaction, 'id' | 'amount' | 'appId' | 'description' | 'balanceAfter' | 'createdAt'>;

function answer(t: Answered, replayed: boolean): SpendResult {
  return {
    replayed,
    body: {
      transaction: {
        id: t.id,
        amount: t.amount,
        appId: t.appId,
        description: t.description,
        balanceAfter: t.balanceAfter,
        createdAt: t.createdAt.toISOString(),
      },
      balance: t.balanceAfter,
    },
  };
}

/** What an idempotency key is bound to: the request (null without a key). */
function hashOf(input: SpendInput): string | null {
  return input.idempotencyKey
    ? requestHash({
        amount: input.amount,
        appId: input.appId,
        description: input.description,
        metadata: input.metadata,
        owner: input.owner,
      })
    : null;
}

/**
 * Debits `amount` from the owner's wallet, burning lots in order. With an idempotency key the first
 * answer is kept: the same key with the same request answers it again (no second debit); with a
 * different request it is refused. The wallet lock orders concurrent spends, so the key check after it
 * sees every committed spend.
 */
export async function spend(tx: Tx, input: SpendInput, policy: LedgerPolicy): Promise<SpendResult | Insufficient> {
  const hash = hashOf(input);
  const done = await spendInDatabase(tx, input, hash, policy);
  if (done) return done;
  // The wallet is new, a lot expired or the daily refill is due: the steps below do that first, under a savepoint
  // of their own so that, like credits.try_spend, the spend changes all or nothing and never aborts the transaction.
  await tx.execute(sql`savepoint spend_steps`);
  try {
    const result = await spendInSteps(tx, input, hash, policy);
    await tx.execute(sql`release savepoint spend_steps`);
    return result;
  } catch (err) {
    await tx.execute(sql`rollback to savepoint spend_steps`);
    throw err;
  }
}

async function spendInSteps(tx: Tx, input: SpendInput, hash: string | null, policy: LedgerPolicy): Promise<SpendResult | Insufficient> {
  const w = await lockWallet(tx, input.owner, policy);
  if (input.idempotencyKey) {
    const [prior] = await tx
      .select()
      .from(ledgerTransactions)
      .where(and(eq(ledgerTransactions.owner, input.owner), eq(ledgerTransactions.idempotencyKey, input.idempotencyKey)));
    if (prior) {
      if (prior.kind !== 'spend' || prior.requestHash !== hash) throw CREDITS_ERRORS.idempotencyKeyReused();
      return answer(prior, true);
    }
  }
  const changed = await maintain(tx, w, policy);
  if (w.available < input.amount) {
    // The refill/expiry just done stays (the transaction commits); the caller answers 402.
    if (changed) await saveWallet(tx, w);
    return { insufficient: w.available };
  }
  const allocations = await burn(tx, w, input.amount, policy.now);
  w.available -= input.amount;
  w.totalSpent += input.amount;
  const t = await post(
    tx,
    w,
    {
      kind: 'spend',
      amount: -input.amount,
      appId: input.appId,
      description: input.description,
      grantCategory: allocations.length === 1 ? allocations[0].category : null,
      actor: input.actor,
      idempotencyKey: input.idempotencyKey ?? null,
      requestHash: hash,
      metadata: input.metadata ?? null,
    },
    [
      ...allocations.map((a) => ({ account: 'available' as const, amount: -a.amount, grantId: a.grantId })),
      { account: 'system:revenue', amount: input.amount },
    ],
  );
  await saveWallet(tx, w);
  return answer(t, false);
}

/** A ledger row as `to_jsonb` writes it (snake_case; bigint as a number, timestamptz as text). */
interface LedgerJson {
  id: string;
  amount: number;
  app_id: string | null;
  description: string | null;
  balance_after: number;
  created_at: string;
}

/**
 * The common spend in one statement (`credits.spend`, migration 0005): the same lock, key check, burn order and
 * postings as the steps in `spend`, without a round trip between them, so the wallet's row lock is held for one
 * statement and the commit. Undefined when the wallet needs `maintain` first (nothing was changed then).
 */
async function spendInDatabase(
  tx: Tx,
  input: SpendInput,
  hash: string | null,
  policy: LedgerPolicy,
): Promise<SpendResult | Insufficient | undefined> {
  const metadata = input.metadata === undefined ? null : JSON.stringify(input.metadata);
  const args = sql`${input.owner}, ${input.actor}, ${input.amount}, ${input.appId}, ${input.description},
      ${input.idempotencyKey ?? null}, ${hash}, ${metadata}::jsonb, ${policy.now.toISOString()}::timestamptz, ${policy.dailyFree}, ${randomUUID()}`;
  const actor = orgActorPseudonym(input, policy);
  const { rows } = await tx.execute<SpendRow>(
    actor === null ? sql`select * from credits.try_spend(${args})` : sql`select * from credits.try_org_spend(${actor}, ${args})`,
  );
  return outcome(rows[0]);
}

/**
 * On an organization's wallet the spend goes through `credits.try_org_spend`, which first claims the actor
 * (`claimActor`: their erasure lock, their tombstone) and answers 'erased' for an erased one; the pseudonym to check,
 * or null on a user's own wallet (the same single statement as before, nothing more).
 */
function orgActorPseudonym(input: SpendInput, policy: LedgerPolicy): string | null {
  return input.owner.startsWith('org:') ? policy.pseudonymOf(input.actor) : null;
}

/**
 * The spend as one transaction in one round trip of its own (`runAloneInOwnerScope`), for a wallet no other write
 * waits for; undefined when it needs the TypeScript steps (then nothing was changed).
 */
export async function spendAlone(db: CreditsDb, input: SpendInput, policy: LedgerPolicy): Promise<SpendResult | Insufficient | undefined> {
  const text = (v: string | null | undefined) => (v === null || v === undefined ? 'null' : pg.escapeLiteral(v));
  const int = (n: number) => {
    if (!Number.isSafeInteger(n)) throw new Error('not an integer');
    return String(n);
  };
  const args = [
    text(input.owner),
    text(input.actor),
    int(input.amount),
    text(input.appId),
    text(input.description),
    text(input.idempotencyKey),
    text(hashOf(input)),
    `${text(input.metadata === undefined ? null : JSON.stringify(input.metadata))}::jsonb`,
    `${text(policy.now.toISOString())}::timestamptz`,
    int(policy.dailyFree),
    `${text(randomUUID())}::uuid`,
  ];
  const actor = orgActorPseudonym(input, policy);
  const call = actor === null ? `credits.try_spend(${args.join(', ')})` : `credits.try_org_spend(${text(actor)}, ${args.join(', ')})`;
  const rows = await runAloneInOwnerScope<SpendRow>(db, input.owner, `select * from ${call}`);
  return outcome(rows[0]);
}

type SpendRow = {
  status: string;
  available: string | null;
  tx: LedgerJson | null;
};

function outcome(r: SpendRow | undefined): SpendResult | Insufficient | undefined {
  switch (r?.status) {
    case 'ok':
    case 'replay': {
      if (!r.tx) throw new Error('credits.spend answered no transaction');
      const t = r.tx;
      return answer(
        {
          id: t.id,
          amount: Number(t.amount),
          appId: t.app_id,
          description: t.description,
          balanceAfter: Number(t.balance_after),
          createdAt: new Date(t.created_at),
        },
        r.status === 'replay',
      );
    }
    case 'key_reused':
      throw CREDITS_ERRORS.idempotencyKeyReused();
    case 'insufficient':
      return { insufficient: Number(r.available) };
    case 'maintain':
      return undefined;
    case 'erased':
      throw CREDITS_ERRORS.actorErased();
    case 'error': {
      // Undone inside the function; the transaction goes on. Thrown as the database's error would have been.
      const e = r.tx as unknown as { sqlstate: string; message: string };
      throw Object.assign(new Error(`credits.spend: ${e.message}`), { code: e.sqlstate });
    }
    default:
      throw new Error(`credits.spend answered ${String(r?.status)}`);
  }
}
