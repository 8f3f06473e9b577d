import { randomUUID } from 'node:crypto';
import { and, eq, gt, sql } from 'drizzle-orm';
import { grants, ledgerPostings, ledgerTransactions, wallets, type GrantCategory } from '../db/schema';
import type { Owner, Tx, WalletWriteClaim } from '../db/scope';
import { ledgerPosted } from '../metrics';
import { CREDITS_ERRORS } from './errors';

/** What every ledger operation needs besides the transaction: the time, the free-credit policy, the erasure pseudonym. */
export interface LedgerPolicy {
  now: Date;
  /** Daily free credits for user wallets (0 = none). */
  dailyFree: number;
  /** The keyed pseudonym erasure gives a user id (`erased:<hmac>`): the key of the user's tombstone. */
  pseudonymOf: (userId: string) => string;
}

export type Account = 'available' | 'held' | 'system:issuance' | 'system:revenue' | 'system:breakage' | 'system:payments';
export type TxKind = 'spend' | 'grant' | 'expire' | 'hold' | 'capture' | 'release' | 'refund' | 'close';

export interface Posting {
  account: Account;
  amount: number;
  grantId?: string;
}

/** The locked wallet as a transaction sees and changes it; `save` writes it back once. */
export interface Wallet {
  owner: Owner;
  available: number;
  held: number;
  totalEarned: number;
  totalSpent: number;
  nextDailyAt: Date | null;
  version: number;
}

export interface TxHeader {
  kind: TxKind;
  /** Signed change of `available`. */
  amount: number;
  appId?: string | null;
  description?: string | null;
  grantCategory?: GrantCategory | null;
  actor?: string | null;
  idempotencyKey?: string | null;
  requestHash?: string | null;
  reservationId?: string | null;
  purchaseId?: string | null;
  metadata?: Record<string, unknown> | null;
}

export type LedgerTransaction = typeof ledgerTransactions.$inferSelect;

/**
 * Locks the owner's wallet for the rest of the transaction (creating it on first use). Every change of a
 * wallet's lots, holds or balance happens under this lock, so they serialize per wallet and never deadlock.
 * An erased user's wallet is not created again: 410 WALLET_ERASED.
 */
export async function lockWallet(tx: Tx, owner: Owner, policy: LedgerPolicy): Promise<Wallet> {
  const w = await openWallet(tx, owner, policy);
  if (!w) throw CREDITS_ERRORS.walletErased();
  return w;
}

/**
 * `lockWallet` for the callers that drop an erased user's work instead of refusing it (events, the webhook, the
 * sweeper): undefined when the user was erased, and nothing was created. A missing wallet is created only after
 * `credits.claim_user` took the owner's lock — the one erasure takes before it looks for the wallet — and found no
 * tombstone; a wallet that exists was not erased (erasure deletes it under its row lock, and a waiter then finds none).
 */
export async function openWallet(tx: Tx, owner: Owner, policy: LedgerPolicy): Promise<Wallet | undefined> {
  const found = await selectForUpdate(tx, owner);
  if (found) return found;
  if (await isErased(tx, owner, policy)) return undefined;
  await tx.insert(wallets).values({ owner }).onConflictDoNothing();
  const created = await selectForUpdate(tx, owner);
  if (!created) throw new Error('wallet row not visible after insert');
  return created;
}

/**
 * Whether the owner is an erased user, holding the owner's erasure lock (`credits.lock_owner`) from here to the end of
 * the transaction, so no erasure commits between this answer and what the caller writes. Organizations are not erased.
 */
export async function isErased(tx: Tx, owner: Owner, policy: LedgerPolicy): Promise<boolean> {
  if (!owner.startsWith('user:')) return false;
  const pseudonym = policy.pseudonymOf(owner.slice('user:'.length));
  const r = await tx.execute<{ erased: boolean }>(sql`select credits.claim_user(${pseudonym}) as erased`);
  return r.rows[0]?.erased === true;
}

/**
 * Before a user writes on an organization's wallet (a spend, a hold and its resolution, a checkout: rows that record
 * them as `actor`): takes the actor's erasure lock, shared (`credits.claim_actor`), to the end of the transaction and
 * refuses (410 WALLET_ERASED) an actor whose erasure left a tombstone. An erasure in flight finishes first and this
 * sees its tombstone; one that comes later waits for this write and pseudonymizes its rows. Call it before the
 * wallet's row lock. Nothing for a user's own wallet (the owner is the actor: `openWallet` orders it).
 */
export async function claimActor(tx: Tx, owner: Owner, actor: string, policy: LedgerPolicy): Promise<void> {
  if (!owner.startsWith('org:')) return;
  const r = await tx.execute<{ erased: boolean }>(sql`select credits.claim_actor(${actor}, ${policy.pseudonymOf(actor)}) as erased`);
  if (r.rows[0]?.erased) throw CREDITS_ERRORS.actorErased();
}

/**
 * `claimActor` as a wallet write's claim (`withWalletWrite`'s `claim`), so a batch claims its actors first, in order;
 * none for a user's own wallet.
 */
export function actorClaim(owner: Owner, actor: string, policy: LedgerPolicy): WalletWriteClaim | undefined {
  if (!owner.startsWith('org:')) return undefined;
  return { key: actor, run: (tx) => claimActor(tx, owner, actor, policy) };
}

async function selectForUpdate(tx: Tx, owner: Owner): Promise<Wallet | undefined> {
  const [row] = await tx.select().from(wallets).where(eq(wallets.owner, owner)).for('update');
  return row ? { ...row, owner } : undefined;
}

/** Writes the wallet's cached balance back (one UPDATE per ledger operation, version + 1). */
export async function saveWallet(tx: Tx, w: Wallet): Promise<void> {
  w.version += 1;
  await tx
    .update(wallets)
    .set({
      available: w.available,
      held: w.held,
      totalEarned: w.totalEarned,
      totalSpent: w.totalSpent,
      nextDailyAt: w.nextDailyAt,
      version: w.version,
      updatedAt: sql`now()`,
    })
    .where(eq(wallets.owner, w.owner));
}

/** Appends one ledger transaction: the header, then all its postings in one INSERT (the balance trigger). */
export async function post(tx: Tx, w: Wallet, header: TxHeader, postings: Posting[]): Promise<LedgerTransaction> {
  const id = randomUUID();
  const [row] = await tx
    .insert(ledgerTransactions)
    .values({
      id,
      owner: w.owner,
      kind: header.kind,
      amount: header.amount,
      balanceAfter: w.available,
      appId: header.appId ?? null,
      description: header.description ?? null,
      grantCategory: header.grantCategory ?? null,
      actor: header.actor ?? null,
      idempotencyKey: header.idempotencyKey ?? null,
      requestHash: header.requestHash ?? null,
      reservationId: header.reservationId ?? null,
      purchaseId: header.purchaseId ?? null,
      metadata: header.metadata ?? null,
    })
    .returning();
  const lines = postings.filter((p) => p.amount !== 0);
  if (lines.length > 0) {
    await tx
      .insert(ledgerPostings)
      .values(lines.map((p) => ({ transactionId: id, owner: w.owner, account: p.account, grantId: p.grantId ?? null, amount: p.amount })));
  }
  if (!row) throw new Error('ledger insert returned nothing');
  ledgerPosted.emit(header.kind, header.grantCategory ?? null, lines);
  return row;
}

export interface NewGrant {
  category: GrantCategory;
  amount: number;
  expiresAt: Date | null;
  sourceKey: string;
  reason?: string | null;
  /** The system account the credit comes from. */
  from: 'system:issuance' | 'system:payments';
  appId?: string | null;
  actor?: string | null;
  purchaseId?: string | null;
}

/**
 * Adds a lot to a locked wallet with its ledger transaction. Returns undefined when a lot with this
 * source key exists already (the grant happened before: nothing changes).
 */
export async function addGrant(tx: Tx, w: Wallet, g: NewGrant): Promise<{ grantId: string; transaction: LedgerTransaction } | undefined> {
  const grantId = randomUUID();
  const inserted = await tx
    .insert(grants)
    .values({
      id: grantId,
      owner: w.owner,
      category: g.category,
      amount: g.amount,
      remaining: g.amount,
      expiresAt: g.expiresAt,
      sourceKey: g.sourceKey,
      reason: g.reason ?? null,
    })
    .onConflictDoNothing()
    .returning({ id: grants.id });
  if (inserted.length === 0) return undefined;
  w.available += g.amount;
  w.totalEarned += g.amount;
  const transaction = await post(
    tx,
    w,
    {
      kind: 'grant',
      amount: g.amount,
      grantCategory: g.category,
      description: g.reason ?? null,
      appId: g.appId,
      actor: g.actor,
      purchaseId: g.purchaseId,
    },
    [
      { account: g.from, amount: -g.amount },
      { account: 'available', amount: g.amount, grantId },
    ],
  );
  return { grantId, transaction };
}

const CATEGORY_RANK = sql`case ${grants.category} when 'daily' then 0 when 'promo' then 1 else 2 end`;

export interface Allocation {
  grantId: string;
  category: GrantCategory;
  amount: number;
}

/**
 * Takes `amount` out of the wallet's live lots in burn order — soonest expiry first (no expiry last),
 * then daily → promo → paid, then oldest — and returns what came from which lot. The caller checked
 * that `available` covers it; the wallet lock keeps it so.
 */
export async function burn(tx: Tx, w: Wallet, amount: number, now: Date): Promise<Allocation[]> {
  const live = await tx
    .select({ id: grants.id, category: grants.category, remaining: grants.remaining })
    .from(grants)
    .where(and(eq(grants.owner, w.owner), gt(grants.remaining, 0), sql`(${grants.expiresAt} is null or ${grants.expiresAt} > ${now})`))
    .orderBy(sql`${grants.expiresAt} asc nulls last`, CATEGORY_RANK, grants.createdAt, grants.id);
  const out: Allocation[] = [];
  let left = amount;
  for (const g of live) {
    if (left === 0) break;
    const take = Math.min(left, g.remaining);
    out.push({ grantId: g.id, category: g.category, amount: take });
    left -= take;
  }
  if (left > 0) throw new Error(`ledger invariant broken: lots of ${w.owner} do not cover ${amount}`);
  await adjustLots(
    tx,
    out.map((a) => ({ grantId: a.grantId, delta: -a.amount })),
  );
  return out;
}

/** Changes several lots' remainders in one statement. */
export async function adjustLots(tx: Tx, changes: Array<{ grantId: string; delta: number }>): Promise<void> {
  if (changes.length === 0) return;
  const values = sql.join(
    changes.map((c) => sql`(${c.grantId}::uuid, ${c.delta}::bigint)`),
    sql`, `,
  );
  await tx.execute(
    sql`update credits.grants g set remaining = g.remaining + v.delta from (values ${values}) as v(id, delta) where g.id = v.id`,
  );
}

/** Moves what is left of expired lots to breakage. */
export async function expireLots(tx: Tx, w: Wallet, now: Date): Promise<number> {
  const expired = await tx
    .select({ id: grants.id, remaining: grants.remaining })
    .from(grants)
    .where(and(eq(grants.owner, w.owner), gt(grants.remaining, 0), sql`${grants.expiresAt} <= ${now}`));
  const total = expired.reduce((s, e) => s + e.remaining, 0);
  if (total === 0) return 0;
  await adjustLots(
    tx,
    expired.map((e) => ({ grantId: e.id, delta: -e.remaining })),
  );
  w.available -= total;
  await post(tx, w, { kind: 'expire', amount: -total, description: 'Expired credit' }, [
    ...expired.map((e) => ({ account: 'available' as const, amount: -e.remaining, grantId: e.id })),
    { account: 'system:breakage', amount: total },
  ]);
  return total;
}

/** Issues the daily free lot when the wallet's 24 h window has passed (user wallets only). */
export async function refillDaily(tx: Tx, w: Wallet, policy: LedgerPolicy): Promise<boolean> {
  if (policy.dailyFree <= 0 || !w.owner.startsWith('user:')) return false;
  if (w.nextDailyAt && w.nextDailyAt > policy.now) return false;
  const expiresAt = new Date(policy.now.getTime() + 24 * 3600_000);
  w.nextDailyAt = expiresAt;
  const added = await addGrant(tx, w, {
    category: 'daily',
    amount: policy.dailyFree,
    expiresAt,
    sourceKey: `daily:${w.owner}:${policy.now.getTime()}`,
    reason: 'Daily free credits',
    from: 'system:issuance',
  });
  return added !== undefined;
}

/** Whether a wallet needs `maintain` before its balance is right (a cheap check for read paths). */
export function needsMaintenance(
  w: Pick<Wallet, 'owner' | 'nextDailyAt'> | undefined,
  hasExpiredLots: boolean,
  policy: LedgerPolicy,
): boolean {
  if (!w) return policy.dailyFree > 0;
  if (hasExpiredLots) return true;
  return policy.dailyFree > 0 && w.owner.startsWith('user:') && (!w.nextDailyAt || w.nextDailyAt <= policy.now);
}

/** Expired lots to breakage, then the daily refill: run on a locked wallet before any balance decision. */
export async function maintain(tx: Tx, w: Wallet, policy: LedgerPolicy): Promise<boolean> {
  const expired = await expireLots(tx, w, policy.now);
  const refilled = await refillDaily(tx, w, policy);
  return expired > 0 || refilled;
}
