import { and, eq } from 'drizzle-orm';
import { grants } from '../db/schema';
import type { Owner, Tx } from '../db/scope';
import { addGrant, lockWallet, maintain, openWallet, saveWallet, type LedgerPolicy } from './ledger';

export interface PromoGrantInput {
  owner: Owner;
  amount: number;
  reason: string;
  idempotencyKey: string;
  expiresAt?: Date;
}

type Grant = typeof grants.$inferSelect;

export function grantView(g: Grant) {
  return {
    id: g.id,
    category: g.category,
    amount: g.amount,
    remaining: g.remaining,
    expiresAt: g.expiresAt?.toISOString() ?? null,
    reason: g.reason,
    createdAt: g.createdAt.toISOString(),
  };
}

/** A backend's promo grant, once per idempotency key (the key is part of the lot's source key). */
export async function grantPromo(
  tx: Tx,
  input: PromoGrantInput,
  policy: LedgerPolicy,
): Promise<{ grant: ReturnType<typeof grantView>; created: boolean }> {
  const sourceKey = `grant:${input.owner}:${input.idempotencyKey}`;
  const w = await lockWallet(tx, input.owner, policy);
  const changed = await maintain(tx, w, policy);
  const added = await addGrant(tx, w, {
    category: 'promo',
    amount: input.amount,
    expiresAt: input.expiresAt ?? null,
    sourceKey,
    reason: input.reason,
    from: 'system:issuance',
  });
  if (added || changed) await saveWallet(tx, w);
  const [row] = await tx
    .select()
    .from(grants)
    .where(and(eq(grants.owner, input.owner), eq(grants.sourceKey, sourceKey)));
  return { grant: grantView(row), created: added !== undefined };
}

export type SignupOutcome = 'granted' | 'unchanged' | 'erased';

/**
 * The signup bonus: a promo lot keyed `signup:<userId>`, so however often the event comes, it is granted once. A
 * user erased before the event is handled (a late or redelivered user.registered.v1) gets nothing: 'erased'.
 */
export async function grantSignupBonus(tx: Tx, userId: string, owner: Owner, amount: number, policy: LedgerPolicy): Promise<SignupOutcome> {
  if (amount <= 0) return 'unchanged';
  const w = await openWallet(tx, owner, policy);
  if (!w) return 'erased';
  const added = await addGrant(tx, w, {
    category: 'promo',
    amount,
    expiresAt: null,
    sourceKey: `signup:${userId}`,
    reason: 'Signup bonus',
    from: 'system:issuance',
  });
  if (!added) return 'unchanged';
  await saveWallet(tx, w);
  return 'granted';
}
