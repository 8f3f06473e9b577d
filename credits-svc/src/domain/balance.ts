import { and, eq, gt } from 'drizzle-orm';
import pg from 'pg';
import { grants, wallets, type GrantCategory } from '../db/schema';
import { readInOwnerScope, withOwnerScope, type CreditsDb, type Owner, type Tx } from '../db/scope';
import { maintain, needsMaintenance, openWallet, saveWallet, type LedgerPolicy } from './ledger';

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

type WalletRow = { available: number; held: number; totalEarned: number; totalSpent: number; nextDailyAt: Date | null };
type Lot = { category: GrantCategory; remaining: number; expiresAt: Date | null };

/**
 * The balance of a wallet that `balanceOf` found stale (a lot expired, the daily window passed): the wallet is
 * locked and brought up to date first (lazy refill, no cron), then read. The lock comes before any read: every
 * writer of the wallet and its lots holds it, and `snapshot` is two statements, each with its own snapshot under
 * READ COMMITTED. Unlocked, a sweeper committing between them paired the wallet from before its expiry with the
 * lots from after it: the expired lot no longer looked expired, and its credit was answered as available.
 */
async function readBalance(tx: Tx, owner: Owner, policy: LedgerPolicy): Promise<BalanceView> {
  const w = await openWallet(tx, owner, policy);
  // An erased user reads what a user without a wallet reads, and no wallet (nor daily credit) is made for the read.
  if (!w) return view(owner, undefined, [], policy);
  if (await maintain(tx, w, policy)) await saveWallet(tx, w);
  const { wallet, lots } = await snapshot(tx, owner);
  return view(owner, wallet, lots, policy);
}

/**
 * The balance for a route: the wallet and its lots in one round trip (one statement in the owner's scope); only
 * when they need `maintain` (a lot expired, the daily window passed) a transaction that locks and updates them.
 */
export async function balanceOf(db: CreditsDb, owner: Owner, policy: LedgerPolicy): Promise<BalanceView> {
  const o = pg.escapeLiteral(owner);
  const [row] = await readInOwnerScope<{ wallet: WalletJson | null; lots: LotJson[] }>(
    db,
    owner,
    `select (select json_build_object('available', w.available, 'held', w.held, 'totalEarned', w.total_earned,
                                      'totalSpent', w.total_spent, 'nextDailyAt', w.next_daily_at)
               from credits.wallets w where w.owner = ${o}) as wallet,
            (select coalesce(json_agg(json_build_object('category', g.category, 'remaining', g.remaining, 'expiresAt', g.expires_at)), '[]')
               from credits.grants g where g.owner = ${o} and g.remaining > 0) as lots`,
  );
  const wallet = row?.wallet
    ? { ...row.wallet, nextDailyAt: row.wallet.nextDailyAt === null ? null : new Date(row.wallet.nextDailyAt) }
    : undefined;
  const lots = (row?.lots ?? []).map((l) => ({ ...l, expiresAt: l.expiresAt === null ? null : new Date(l.expiresAt) }));
  if (stale(owner, wallet, lots, policy)) return withOwnerScope(db, owner, (tx) => readBalance(tx, owner, policy));
  return view(owner, wallet, lots, policy);
}

type WalletJson = Omit<WalletRow, 'nextDailyAt'> & { nextDailyAt: string | null };
type LotJson = Omit<Lot, 'expiresAt'> & { expiresAt: string | null };

function stale(owner: Owner, wallet: WalletRow | undefined, lots: Lot[], policy: LedgerPolicy): boolean {
  const hasExpired = lots.some((l) => l.expiresAt !== null && l.expiresAt <= policy.now);
  return needsMaintenance(wallet ? { ...wallet, owner } : undefined, hasExpired, policy);
}

function view(owner: Owner, wallet: WalletRow | undefined, lots: Lot[], policy: LedgerPolicy): BalanceView {
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
