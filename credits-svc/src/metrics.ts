import { MetricSignal, type ServiceMetrics } from '@mana/shared';
import type { GrantCategory } from './db/schema';

/** Every ledger transaction as it is posted: its kind, grant category, and the amounts per account. */
export const ledgerPosted = new MetricSignal<
  [kind: string, category: GrantCategory | null, postings: ReadonlyArray<{ account: string; amount: number }>]
>();

/** A Stripe event about an erased user's purchase (nothing granted or taken back: a payment to settle by hand). */
export const paymentForErased = new MetricSignal<[type: string]>();

/**
 * credits-svc's business counters: credits granted (by category), spent (captured into revenue) and expired
 * (into breakage), counted as the ledger posts them. Returns the unsubscribe function.
 */
export function creditsMetrics(metrics: ServiceMetrics): () => void {
  const granted = metrics.counter('credits_granted_total', 'Credits granted to wallets, by grant category', ['category']);
  const spent = metrics.counter('credits_spent_total', 'Credits spent (direct spends and captured holds)');
  const expired = metrics.counter('credits_expired_total', 'Credits that expired unused');
  const transactions = metrics.counter('credits_ledger_transactions_total', 'Ledger transactions posted, by kind', ['kind']);
  const erasedPayments = metrics.counter(
    'credits_webhook_erased_user_total',
    'Stripe events about the purchase of an erased user, by event type (money to give back by hand)',
    ['type'],
  );
  const stopErased = paymentForErased.subscribe((type) => erasedPayments.inc({ type }));
  const stopLedger = ledgerPosted.subscribe((kind, category, postings) => {
    transactions.inc({ kind });
    for (const p of postings) {
      if (p.account === 'system:revenue' && p.amount > 0) spent.inc(p.amount);
      else if (p.account === 'system:breakage' && p.amount > 0) expired.inc(p.amount);
      else if (kind === 'grant' && p.account === 'available' && p.amount > 0) granted.inc({ category: category ?? 'unknown' }, p.amount);
    }
  });
  return () => {
    stopLedger();
    stopErased();
  };
}
