import { asc, eq, sql } from 'drizzle-orm';
import { grants, ledgerTransactions, purchases, reservations, wallets } from '../db/schema';
import type { Owner, Tx } from '../db/scope';
import { grantView } from './grants';
import { transactionView } from './history';
import { purchaseView } from './purchases';
import { reservationView } from './reservations';

/** Everything credits-svc holds about one user's wallet, for gdpr-svc's summary and export (nothing secret). */
export async function userData(tx: Tx, owner: Owner) {
  const [wallet] = await tx.select().from(wallets).where(eq(wallets.owner, owner));
  const lots = await tx.select().from(grants).where(eq(grants.owner, owner)).orderBy(asc(grants.createdAt));
  const txs = await tx.select().from(ledgerTransactions).where(eq(ledgerTransactions.owner, owner)).orderBy(asc(ledgerTransactions.seq));
  const bought = await tx.select().from(purchases).where(eq(purchases.owner, owner)).orderBy(asc(purchases.createdAt));
  const holds = await tx.select().from(reservations).where(eq(reservations.owner, owner)).orderBy(asc(reservations.createdAt));
  return {
    balance: {
      available: wallet?.available ?? 0,
      held: wallet?.held ?? 0,
      totalEarned: wallet?.totalEarned ?? 0,
      totalSpent: wallet?.totalSpent ?? 0,
      nextFreeRefillAt: wallet?.nextDailyAt?.toISOString() ?? null,
      createdAt: wallet?.createdAt.toISOString() ?? null,
      updatedAt: wallet?.updatedAt.toISOString() ?? null,
    },
    grants: lots.map(grantView),
    transactions: txs.map((t) => ({ ...transactionView(t), metadata: t.metadata ?? null })),
    purchases: bought.map(purchaseView),
    reservations: holds.map(reservationView),
    totals: {
      grants: lots.length,
      transactions: txs.length,
      purchases: bought.length,
      reservations: holds.length,
      earned: wallet?.totalEarned ?? 0,
      spent: wallet?.totalSpent ?? 0,
    },
  };
}

/** Whether the ledger, the lots and the cached balance of a wallet agree (tests and operators). */
export async function reconcile(tx: Tx, owner: Owner) {
  const r = await tx.execute<{ ledger_available: string; ledger_held: string; lots: string; available: string; held: string }>(sql`
    select
      coalesce((select sum(amount) from credits.ledger_postings where owner = ${owner} and account = 'available'), 0) as ledger_available,
      coalesce((select sum(amount) from credits.ledger_postings where owner = ${owner} and account = 'held'), 0) as ledger_held,
      coalesce((select sum(remaining) from credits.grants where owner = ${owner}), 0) as lots,
      coalesce((select available from credits.wallets where owner = ${owner}), 0) as available,
      coalesce((select held from credits.wallets where owner = ${owner}), 0) as held`);
  const row = r.rows[0];
  return {
    ledgerAvailable: Number(row.ledger_available),
    ledgerHeld: Number(row.ledger_held),
    lots: Number(row.lots),
    available: Number(row.available),
    held: Number(row.held),
  };
}
