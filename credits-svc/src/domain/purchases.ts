import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq, gt, inArray, sql } from 'drizzle-orm';
import type Stripe from 'stripe';
import { grants, purchases, webhookEvents } from '../db/schema';
import { enterOwnerScope, withOwnerScope, type CreditsDb, type Owner, type Tx } from '../db/scope';
import type { CreditPackage } from '../config';
import { CREDITS_ERRORS } from './errors';
import { addGrant, adjustLots, claimActor, isErased, openWallet, post, saveWallet, type LedgerPolicy, type Wallet } from './ledger';

type Purchase = typeof purchases.$inferSelect;

export function purchaseView(p: Purchase) {
  return {
    id: p.id,
    packageId: p.packageId,
    credits: p.credits,
    amountCents: p.amountCents,
    currency: p.currency,
    status: p.status,
    refundedCredits: p.refundedCredits,
    refundShortfall: p.refundShortfall,
    createdAt: p.createdAt.toISOString(),
    completedAt: p.completedAt?.toISOString() ?? null,
  };
}

export async function listPurchases(tx: Tx, owner: Owner) {
  const rows = await tx.select().from(purchases).where(eq(purchases.owner, owner)).orderBy(desc(purchases.createdAt));
  return rows.map(purchaseView);
}

export interface CheckoutDeps {
  db: CreditsDb;
  policy: () => LedgerPolicy;
  stripe: Stripe | undefined;
  /** Where Stripe sends the buyer back (the gateway's public URL). */
  returnUrl: string;
}

/**
 * Creates the pending purchase, then the Stripe Checkout Session carrying its id (as
 * `client_reference_id` and in metadata, also on the payment intent so refunds find it). An erased user
 * (a token still valid) buys nothing: 410 WALLET_ERASED, before any row names them again.
 */
export async function startCheckout(
  deps: CheckoutDeps,
  owner: Owner,
  actor: string,
  pkg: CreditPackage,
): Promise<{ purchaseId: string; checkoutUrl: string }> {
  if (!deps.stripe) throw CREDITS_ERRORS.paymentsNotConfigured();
  const purchaseId = randomUUID();
  await withOwnerScope(deps.db, owner, async (tx) => {
    if (await isErased(tx, owner, deps.policy())) throw CREDITS_ERRORS.walletErased();
    // An organization's purchase names its buyer: never an erased one (the order with their erasure: claimActor).
    await claimActor(tx, owner, actor, deps.policy());
    await tx.insert(purchases).values({
      id: purchaseId,
      owner,
      actor,
      packageId: pkg.id,
      credits: pkg.credits,
      amountCents: pkg.priceCents,
      currency: pkg.currency,
      status: 'pending',
    });
  });
  let session: Stripe.Checkout.Session;
  try {
    session = await deps.stripe.checkout.sessions.create(
      {
        mode: 'payment',
        client_reference_id: purchaseId,
        metadata: { purchaseId },
        payment_intent_data: { metadata: { purchaseId } },
        line_items: [
          { quantity: 1, price_data: { currency: pkg.currency, unit_amount: pkg.priceCents, product_data: { name: pkg.name } } },
        ],
        success_url: `${deps.returnUrl}/credits/purchase/success?purchase=${purchaseId}`,
        cancel_url: `${deps.returnUrl}/credits/purchase/cancel?purchase=${purchaseId}`,
      },
      { idempotencyKey: `checkout-${purchaseId}` },
    );
  } catch (err) {
    throw CREDITS_ERRORS.paymentProviderFailed(err);
  }
  await withOwnerScope(deps.db, owner, (tx) =>
    tx.update(purchases).set({ stripeSessionId: session.id }).where(eq(purchases.id, purchaseId)),
  );
  if (!session.url) throw CREDITS_ERRORS.paymentProviderFailed();
  return { purchaseId, checkoutUrl: session.url };
}

const asOwner = (owner: unknown): Owner | undefined =>
  typeof owner === 'string' && /^(user|org):/.test(owner) ? (owner as Owner) : undefined;

/** The purchase's owner was erased: its purchases carry the pseudonym, or the erasure committed while we waited. */
const ERASED = 'erased' as const;
const erasedOwner = (owner: unknown): owner is string => typeof owner === 'string' && owner.startsWith('erased:');

/**
 * Handles one verified Stripe event exactly once: its id is recorded in the same transaction as its
 * effect, so parallel or repeated deliveries wait for the first and then change nothing. 'erased': the
 * purchase's user was erased, so nothing is granted or taken back and no wallet is made for them (the
 * caller logs it and counts it: a payment to give back by hand).
 */
export type StripeEventOutcome = 'handled' | 'duplicate' | 'ignored' | 'refused' | typeof ERASED;

export async function handleStripeEvent(db: CreditsDb, event: Stripe.Event, policy: LedgerPolicy): Promise<StripeEventOutcome> {
  const paidCheckout =
    (event.type === 'checkout.session.completed' || event.type === 'checkout.session.async_payment_succeeded') &&
    event.data.object.payment_status !== 'unpaid';
  // An unpaid completion (a delayed payment method) grants nothing: Stripe follows up with async_payment_succeeded.
  if (!paidCheckout && event.type !== 'charge.refunded') return 'ignored';
  return db.transaction(async (tx): Promise<StripeEventOutcome> => {
    const fresh = await tx
      .insert(webhookEvents)
      .values({ id: event.id, type: event.type })
      .onConflictDoNothing()
      .returning({ id: webhookEvents.id });
    if (fresh.length === 0) return 'duplicate';
    await tx.execute(sql`select set_config('role', 'credits_app', true)`);
    const scoped = tx as unknown as Tx;
    if (event.type === 'charge.refunded') return refundCharge(scoped, event.data.object, policy);
    if (event.type === 'checkout.session.completed' || event.type === 'checkout.session.async_payment_succeeded')
      return completeCheckout(scoped, event.data.object, policy);
    return 'handled';
  });
}

/**
 * Grants a paid checkout's lot — only when the session is the one created for the purchase and it
 * charged the purchase's price in its currency. Anything else is refused: nothing granted, the event
 * recorded as handled (the caller answers 200 so Stripe stops retrying a delivery that will never fit).
 */
async function completeCheckout(tx: Tx, session: Stripe.Checkout.Session, policy: LedgerPolicy): Promise<StripeEventOutcome> {
  const purchaseId = session.metadata?.purchaseId ?? session.client_reference_id;
  if (!purchaseId || !/^[0-9a-f-]{36}$/i.test(purchaseId)) return 'ignored';
  const found = await tx.execute<{ owner: string | null }>(sql`select credits.purchase_owner(${purchaseId}::uuid) as owner`);
  if (erasedOwner(found.rows[0]?.owner)) return ERASED;
  const owner = asOwner(found.rows[0]?.owner);
  if (!owner) return 'ignored';
  await enterOwnerScope(tx, owner);
  const w = await openWallet(tx, owner, policy);
  if (!w) return ERASED;
  const [p] = await tx.select().from(purchases).where(eq(purchases.id, purchaseId)).for('update');
  if (!p || p.status !== 'pending') return 'handled';
  if (
    !p.stripeSessionId ||
    session.id !== p.stripeSessionId ||
    session.amount_total !== p.amountCents ||
    typeof session.currency !== 'string' ||
    session.currency.toLowerCase() !== p.currency.toLowerCase()
  )
    return 'refused';
  const added = await addGrant(tx, w, {
    category: 'paid',
    amount: p.credits,
    expiresAt: null,
    sourceKey: `purchase:${p.id}`,
    reason: `Purchase of ${p.packageId}`,
    from: 'system:payments',
    actor: p.actor,
    purchaseId: p.id,
  });
  if (!added) return 'handled';
  const paymentIntent = typeof session.payment_intent === 'string' ? session.payment_intent : (session.payment_intent?.id ?? null);
  await tx
    .update(purchases)
    .set({
      status: 'completed',
      completedAt: policy.now,
      grantId: added.grantId,
      stripeSessionId: session.id,
      stripePaymentIntent: paymentIntent,
    })
    .where(eq(purchases.id, p.id));
  await saveWallet(tx, w);
  return 'handled';
}

/**
 * Takes back what is left of the purchase's lot, in proportion to the refunded amount; what was spent
 * already is recorded as the purchase's shortfall (the balance never goes negative). Credits of the lot
 * that sat in an open hold count as shortfall too, until the hold gives them back (`reclaimRefunded`).
 */
async function refundCharge(tx: Tx, charge: Stripe.Charge, policy: LedgerPolicy): Promise<StripeEventOutcome> {
  const paymentIntent = typeof charge.payment_intent === 'string' ? charge.payment_intent : (charge.payment_intent?.id ?? null);
  let purchaseId = charge.metadata?.purchaseId;
  let owner: Owner | undefined;
  if (purchaseId && /^[0-9a-f-]{36}$/i.test(purchaseId)) {
    const r = await tx.execute<{ owner: string | null }>(sql`select credits.purchase_owner(${purchaseId}::uuid) as owner`);
    if (erasedOwner(r.rows[0]?.owner)) return ERASED;
    owner = asOwner(r.rows[0]?.owner);
  } else if (paymentIntent) {
    const r = await tx.execute<{ id: string; owner: string }>(
      sql`select id, owner from credits.purchase_by_payment_intent(${paymentIntent})`,
    );
    if (erasedOwner(r.rows[0]?.owner)) return ERASED;
    purchaseId = r.rows[0]?.id;
    owner = asOwner(r.rows[0]?.owner);
  }
  if (!owner || !purchaseId) return 'handled';
  await enterOwnerScope(tx, owner);
  const w = await openWallet(tx, owner, policy);
  if (!w) return ERASED;
  const [p] = await tx.select().from(purchases).where(eq(purchases.id, purchaseId)).for('update');
  // Stripe does not order its events: a refund can arrive before the checkout's completion (a completion still being
  // retried after an outage). Recorded as handled it would be lost and the completion would grant the refunded credits;
  // refused, the transaction rolls back (the event id too) and Stripe delivers it again after the completion.
  if (p?.status === 'pending') throw CREDITS_ERRORS.refundBeforeCompletion();
  if (!p || !p.grantId) return 'handled';
  const fraction = charge.amount > 0 ? Math.min(1, charge.amount_refunded / charge.amount) : 1;
  const due = Math.round(p.credits * fraction) - p.refundedCredits - p.refundShortfall;
  if (due <= 0) return 'handled';
  const [lot] = await tx
    .select()
    .from(grants)
    .where(and(eq(grants.id, p.grantId), eq(grants.owner, owner)))
    .for('update');
  const take = Math.min(due, lot?.remaining ?? 0);
  if (take > 0) {
    await adjustLots(tx, [{ grantId: p.grantId, delta: -take }]);
    w.available -= take;
    await post(tx, w, { kind: 'refund', amount: -take, description: `Refund of ${p.packageId}`, purchaseId: p.id }, [
      { account: 'available', amount: -take, grantId: p.grantId },
      { account: 'system:payments', amount: take },
    ]);
    await saveWallet(tx, w);
  }
  await tx
    .update(purchases)
    .set({
      refundedCredits: p.refundedCredits + take,
      refundShortfall: p.refundShortfall + (due - take),
      status: fraction >= 1 ? 'refunded' : p.status,
      refundedAt: policy.now,
    })
    .where(eq(purchases.id, p.id));
  return 'handled';
}

/**
 * Credits that come back to a lot after its purchase was refunded (a hold that burned it was released,
 * partly captured or expired after the refund) are what the refund could not take then: they go on to
 * `system:payments` — one `refund` transaction per purchase — until the purchase's shortfall is covered,
 * instead of back to the wallet. Call it on the locked wallet after the credits were posted back to the lots.
 */
export async function reclaimRefunded(tx: Tx, w: Wallet, givenBack: Array<{ grantId: string; delta: number }>): Promise<void> {
  if (givenBack.length === 0) return;
  const owed = await tx
    .select()
    .from(purchases)
    .where(
      and(
        eq(purchases.owner, w.owner),
        inArray(
          purchases.grantId,
          givenBack.map((g) => g.grantId),
        ),
        gt(purchases.refundShortfall, 0),
      ),
    )
    .orderBy(asc(purchases.id))
    .for('update');
  for (const p of owed) {
    const back = givenBack.filter((g) => g.grantId === p.grantId).reduce((sum, g) => sum + g.delta, 0);
    const take = Math.min(back, p.refundShortfall);
    if (take <= 0 || !p.grantId) continue;
    await adjustLots(tx, [{ grantId: p.grantId, delta: -take }]);
    w.available -= take;
    await post(tx, w, { kind: 'refund', amount: -take, description: `Refund of ${p.packageId}`, purchaseId: p.id }, [
      { account: 'available', amount: -take, grantId: p.grantId },
      { account: 'system:payments', amount: take },
    ]);
    await tx
      .update(purchases)
      .set({ refundedCredits: p.refundedCredits + take, refundShortfall: p.refundShortfall - take })
      .where(eq(purchases.id, p.id));
  }
}
