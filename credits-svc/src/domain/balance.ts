import { and, eq, gt } from 'drizzle-orm';
import { grants, wallets, type GrantCategory } from '../db/schema';
import type { Owner, Tx } from '../db/scope';
import { lockWallet, maintain, needsMaintenance, saveWallet, type LedgerPolicy } from './ledger';

export interface BalanceView {
  balance: number;
  freeCreditsRemaining: number;
  totalEarned: number;
  totalSpent: number;
  available: number;
  held: number;
  byCategory: Record<GrantCategory, number>;
  nextFreeRefillAt: string | null;
  expiring: Array<{ amount: number; expiresAt: string }>;
}

async function snapshot(tx: Tx, owner: Owner) {
  const [wallet] = await tx.select().from(wallets).where(eq(wallets.owner, owner));
  const lots = await tx
    .select({ category: grants.category, remaining: grants.remaining, expiresAt: grants.expiresAt })
    .from(grants)
    .where(and(eq(grants.owner, owner), gt(grants.remaining, 0)));
  return { wallet, lots };
}

/**
 * The wallet's balance with its lots by category. Usually a plain read; when a lot expired or the
 * daily window passed, the wallet is locked and brought up to date first (lazy refill, no cron).
 */
export async function readBalance(tx: Tx, owner: Owner, policy: LedgerPolicy): Promise<BalanceView> {
  let { wallet, lots } = await snapshot(tx, owner);
  const hasExpired = lots.some((l) => l.expiresAt !== null && l.expiresAt <= policy.now);
  if (needsMaintenance(wallet ? { ...wallet, owner } : undefined, hasExpired, policy)) {
    const w = await lockWallet(tx, owner);
    if (await maintain(tx, w, policy)) await saveWallet(tx, w);
    ({ wallet, lots } = await snapshot(tx, owner));
  }
  const byCategory: Record<GrantCategory, number> = { daily: 0, promo: 0, paid: 0 };
  const expiring = new Map<number, number>();
  for (const lot of lots) {
    byCategory[lot.category] += lot.remaining;
    if (lot.expiresAt) expiring.set(lot.expiresAt.getTime(), (expiring.get(lot.expiresAt.getTime()) ?? 0) + lot.remaining);
  }
  const available = wallet?.available ?? 0;
  const daily = policy.dailyFree > 0 && owner.startsWith('user:');
  return {
    balance: available,
    freeCreditsRemaining: byCategory.daily + byCategory.promo,
    totalEarned: wallet?.totalEarned ?? 0,
    totalSpent: wallet?.totalSpent ?? 0,
    available,
    held: wallet?.held ?? 0,
    byCategory,
    nextFreeRefillAt: daily ? (wallet?.nextDailyAt?.toISOString() ?? null) : null,
    expiring: [...expiring].sort(([a], [b]) => a - b).map(([at, amount]) => ({ amount, expiresAt: new Date(at).toISOString() })),
  };
}
