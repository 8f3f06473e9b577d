import { and, desc, eq, lt, sql } from 'drizzle-orm';
import { ledgerPostings, ledgerTransactions, type GrantCategory } from '../db/schema';
import type { Owner, Tx } from '../db/scope';
import { CREDITS_ERRORS } from './errors';
import type { LedgerTransaction } from './ledger';

export interface TransactionView {
  id: string;
  type: string;
  amount: number;
  balanceAfter: number;
  appId: string | null;
  description: string | null;
  grantCategory?: GrantCategory;
  reservationId?: string;
  purchaseId?: string;
  createdAt: string;
}

export function transactionView(t: LedgerTransaction): TransactionView {
  return {
    id: t.id,
    type: t.kind,
    amount: t.amount,
    balanceAfter: t.balanceAfter,
    appId: t.appId,
    description: t.description,
    ...(t.grantCategory ? { grantCategory: t.grantCategory } : {}),
    ...(t.reservationId ? { reservationId: t.reservationId } : {}),
    ...(t.purchaseId ? { purchaseId: t.purchaseId } : {}),
    createdAt: t.createdAt.toISOString(),
  };
}

/** Opaque keyset cursor: the ledger sequence number of the last row of the page. */
export const encodeCursor = (seq: number) => Buffer.from(`s${seq}`).toString('base64url');

export function decodeCursor(cursor: string): number {
  const m = /^s(\d{1,18})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw CREDITS_ERRORS.invalidCursor();
  return Number(m[1]);
}

/**
 * Newest first. `offset` paging (the seed's shape) or keyset paging with `cursor`; `next` is the cursor of
 * the following page when this one is full.
 */
export async function listTransactions(
  tx: Tx,
  owner: Owner,
  page: { limit: number; offset?: number; cursor?: string },
): Promise<{ items: TransactionView[]; next: string | null }> {
  const before = page.cursor ? decodeCursor(page.cursor) : undefined;
  const rows = await tx
    .select()
    .from(ledgerTransactions)
    .where(and(eq(ledgerTransactions.owner, owner), before === undefined ? undefined : lt(ledgerTransactions.seq, before)))
    .orderBy(desc(ledgerTransactions.seq))
    .limit(page.limit)
    .offset(before === undefined ? (page.offset ?? 0) : 0);
  const last = rows.at(-1);
  return { items: rows.map(transactionView), next: rows.length === page.limit && last ? encodeCursor(last.seq) : null };
}

/** What the owner spent per app in [from, to): spends and captured holds (the postings to revenue). */
export async function usage(tx: Tx, owner: Owner, from: Date | undefined, to: Date | undefined) {
  const rows = await tx
    .select({
      appId: ledgerTransactions.appId,
      spent: sql<string>`sum(${ledgerPostings.amount})`,
      count: sql<string>`count(distinct ${ledgerTransactions.id})`,
    })
    .from(ledgerTransactions)
    .innerJoin(ledgerPostings, and(eq(ledgerPostings.transactionId, ledgerTransactions.id), eq(ledgerPostings.account, 'system:revenue')))
    .where(
      and(
        eq(ledgerTransactions.owner, owner),
        eq(ledgerPostings.owner, owner),
        from ? sql`${ledgerTransactions.createdAt} >= ${from}` : undefined,
        to ? sql`${ledgerTransactions.createdAt} < ${to}` : undefined,
      ),
    )
    .groupBy(ledgerTransactions.appId)
    .orderBy(desc(sql`sum(${ledgerPostings.amount})`));
  return rows.map((r) => ({ appId: r.appId, spent: Number(r.spent), count: Number(r.count) }));
}
