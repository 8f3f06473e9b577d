import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@mana/shared';
import { eventually } from '@mana/shared/testing';
import { chargeRefunded, checkoutCompleted, startFakeStripe, type FakeStripe } from '../../credits-svc/test/fake-stripe';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified } from '../helpers/users';

const WEBHOOK_SECRET = 'whsec_test_0123456789abcdef0123456789abcdef';

interface Person {
  userId: string;
  token: string;
}

interface Balance {
  available: number;
  held: number;
  balance: number;
  freeCreditsRemaining: number;
  byCategory: { daily: number; promo: number; paid: number };
  nextFreeRefillAt: string | null;
  expiring: Array<{ amount: number; expiresAt: string }>;
}

/**
 * Purchases against a local fake of Stripe's API (signed webhooks with the real `stripe` package), with
 * the default signup bonus (150) and daily free credit (5): burn order across categories, daily refill.
 */
describe('credits-svc: purchases, the Stripe webhook, daily credit and burn order', () => {
  let s: Stack;
  let stripe: FakeStripe;
  const v1 = (path: string) => `${s.gatewayUrl}/api/v1/credits${path}`;
  const people: Person[] = [];
  const signUp = async (): Promise<Person> => {
    const u = await registerVerified(s);
    const t = await login(s, u.email, u.password);
    return { userId: u.userId, token: t.accessToken };
  };
  const person = async () => people.pop() ?? signUp();
  /** Waits for the signup bonus the user.registered.v1 consumer grants. */
  const withBonus = async (p: Person) => {
    await eventually(async () => {
      const r = await s.sql.query(`select 1 from credits.grants where source_key = $1`, [`signup:${p.userId}`]);
      return r.rowCount === 1 ? true : undefined;
    });
    return p;
  };
  const balanceOf = async (p: Person) => (await call<Balance>(v1('/balance'), { token: p.token })).body;
  const deliver = (d: { body: string; signature?: string }) =>
    fetch(v1('/webhook'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(d.signature ? { 'stripe-signature': d.signature } : {}) },
      body: d.body,
    });
  /** Buys a package and has Stripe confirm it; returns the purchase and its payment intent. */
  const buy = async (p: Person, packageId = 'mana-100') => {
    const r = await call<{ purchaseId: string; checkoutUrl: string }>(v1('/purchases'), { token: p.token, body: { packageId } });
    expect(r.status).toBe(201);
    const session = stripe.sessions.find((x) => x.params.get('client_reference_id') === r.body.purchaseId);
    if (!session) throw new Error('no checkout session');
    const paymentIntent = `pi_${randomUUID().slice(0, 12)}`;
    const event = checkoutCompleted(`evt_${randomUUID()}`, {
      id: session.id,
      purchaseId: r.body.purchaseId,
      paymentIntent,
      amountTotal: Number(session.params.get('line_items[0][price_data][unit_amount]')),
      currency: session.params.get('line_items[0][price_data][currency]') ?? '',
    });
    return { purchaseId: r.body.purchaseId, checkoutUrl: r.body.checkoutUrl, session, paymentIntent, event };
  };

  beforeAll(async () => {
    stripe = await startFakeStripe(WEBHOOK_SECRET);
    s = await startStack({
      services: ['credits'],
      serviceEnv: { credits: { STRIPE_SECRET_KEY: 'sk_test_fake', STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, STRIPE_API_URL: stripe.url } },
    });
    // A few at a time: many parallel sign-ups overload auth-svc on a busy machine.
    for (let i = 0; i < 7; i += 4) people.push(...(await Promise.all(Array.from({ length: Math.min(4, 7 - i) }, signUp))));
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await stripe?.close();
  });

  it('a purchase creates a Checkout Session; five parallel deliveries of its signed event grant once', async () => {
    const p = await withBonus(await person());
    const before = (await balanceOf(p)).available;
    const { purchaseId, checkoutUrl, session, event } = await buy(p);
    expect(checkoutUrl).toBe(`https://checkout.stripe.test/c/pay/${session.id}`);
    expect(session.params.get('metadata[purchaseId]')).toBe(purchaseId);
    expect(session.params.get('line_items[0][price_data][unit_amount]')).toBe('100');
    const pending = await call<Array<{ id: string; status: string }>>(v1('/purchases'), { token: p.token });
    expect(pending.body).toMatchObject([{ id: purchaseId, status: 'pending', credits: 100, amountCents: 100, currency: 'eur' }]);

    const signed = stripe.sign(event);
    const deliveries = await Promise.all(Array.from({ length: 5 }, () => deliver(signed)));
    expect(deliveries.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    // Stripe may also send the same session in a new event: still one grant.
    expect((await deliver(stripe.sign({ ...event, id: `evt_${randomUUID()}` }))).status).toBe(200);
    const lots = await s.sql.query(`select amount from credits.grants where source_key = $1`, [`purchase:${purchaseId}`]);
    expect(lots.rows.map((r: { amount: string }) => Number(r.amount))).toEqual([100]);
    const after = await balanceOf(p);
    expect(after.available).toBe(before + 100);
    expect(after.byCategory.paid).toBe(100);
    const done = await call<Array<{ status: string; completedAt: string | null }>>(v1('/purchases'), { token: p.token });
    expect(done.body[0]?.status).toBe('completed');
    expect(done.body[0]?.completedAt).toBeTruthy();
  });

  it('refuses unsigned, mis-signed, tampered and stale deliveries with 400 INVALID_SIGNATURE; grants only once paid', async () => {
    const p = await person();
    const { event, purchaseId } = await buy(p);
    const good = stripe.sign(event);
    const attempts = [
      { body: good.body },
      stripe.sign(event, { secret: 'whsec_wrong_secret_wrong_secret_wrong' }),
      { body: good.body.replace('"paid"', '"unpaid"'), signature: good.signature },
      stripe.sign(event, { timestamp: Math.floor(Date.now() / 1000) - 301 }),
    ];
    for (const a of attempts) {
      const r = await deliver(a);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: string }).error).toBe('INVALID_SIGNATURE');
    }
    // Signed but not paid yet (a delayed payment method): nothing until Stripe says the payment succeeded.
    const unpaid = { ...event, id: `evt_${randomUUID()}`, data: { object: { ...event.data.object, payment_status: 'unpaid' } } };
    expect((await deliver(stripe.sign(unpaid))).status).toBe(200);
    const lots = await s.sql.query(`select 1 from credits.grants where source_key = $1`, [`purchase:${purchaseId}`]);
    expect(lots.rowCount).toBe(0);
    const succeeded = {
      ...event,
      id: `evt_${randomUUID()}`,
      type: 'checkout.session.async_payment_succeeded',
      data: { object: { ...event.data.object } },
    };
    expect((await deliver(stripe.sign(succeeded))).status).toBe(200);
    const granted = await s.sql.query(`select 1 from credits.grants where source_key = $1`, [`purchase:${purchaseId}`]);
    expect(granted.rowCount).toBe(1);
  });

  it('a signed completion whose session, amount or currency differ from the purchase grants nothing (200, refused)', async () => {
    const p = await person();
    const { event, purchaseId, session } = await buy(p, 'mana-500');
    const other = await buy(p, 'mana-100');
    const forged = [
      // Another (cheaper, really paid) session of the same buyer carrying this purchase's id.
      { ...event.data.object, id: other.session.id, amount_total: 100 },
      { ...event.data.object, amount_total: 1 },
      { ...event.data.object, currency: 'huf' },
      { ...event.data.object, amount_total: undefined, currency: undefined },
    ];
    for (const object of forged) {
      const r = await deliver(stripe.sign({ ...event, id: `evt_${randomUUID()}`, data: { object } }));
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ received: true, outcome: 'refused' });
    }
    const lots = await s.sql.query(`select 1 from credits.grants where source_key = $1`, [`purchase:${purchaseId}`]);
    expect(lots.rowCount).toBe(0);
    const row = await s.sql.query(`select status, stripe_session_id from credits.purchases where id = $1`, [purchaseId]);
    expect(row.rows[0]).toEqual({ status: 'pending', stripe_session_id: session.id });
    // The genuine event still grants.
    const genuine = await deliver(stripe.sign(event));
    expect(await genuine.json()).toEqual({ received: true, outcome: 'handled' });
    const granted = await s.sql.query(`select amount from credits.grants where source_key = $1`, [`purchase:${purchaseId}`]);
    expect(granted.rows).toEqual([{ amount: '500' }]);
  });

  it('charge.refunded takes back what is left of the lot and records the shortfall; the balance never goes negative', async () => {
    const p = await withBonus(await person());
    const { purchaseId, paymentIntent, event } = await buy(p);
    expect((await deliver(stripe.sign(event))).status).toBe(200);
    const start = await balanceOf(p); // 5 daily + 150 promo + 100 paid
    expect(start.byCategory).toEqual({ daily: 5, promo: 150, paid: 100 });
    const spent = await call(v1('/use'), { token: p.token, body: { amount: 215, appId: 'chat', description: 'big job' } });
    expect(spent.status).toBe(201); // 5 daily, 150 promo, 60 paid: 40 paid left
    const refund = chargeRefunded(`evt_${randomUUID()}`, { paymentIntent, amount: 100, amountRefunded: 100 });
    const signed = stripe.sign(refund);
    expect((await Promise.all([deliver(signed), deliver(signed)])).map((r) => r.status)).toEqual([200, 200]);
    const after = await balanceOf(p);
    expect(after.available).toBe(0);
    const row = await s.sql.query(`select status, refunded_credits, refund_shortfall from credits.purchases where id = $1`, [purchaseId]);
    expect(row.rows[0]).toEqual({ status: 'refunded', refunded_credits: '40', refund_shortfall: '60' });
    const history = await call<Array<{ type: string; amount: number }>>(v1('/transactions?limit=1'), { token: p.token });
    expect(history.body[0]).toMatchObject({ type: 'refund', amount: -40 });
  });

  it('a refund delivered before its checkout completion is refused until the completion, then taken back', async () => {
    const p = await withBonus(await person());
    const { purchaseId, paymentIntent, event } = await buy(p);
    const refund = stripe.sign(chargeRefunded(`evt_${randomUUID()}`, { paymentIntent, amount: 100, amountRefunded: 100, purchaseId }));
    const early = await deliver(refund);
    expect(early.status).toBe(409);
    expect(await early.json()).toMatchObject({ error: 'PURCHASE_NOT_COMPLETED' });
    // Nothing was recorded: not the event id, not the refund.
    expect((await s.sql.query(`select status, refunded_credits from credits.purchases where id = $1`, [purchaseId])).rows).toEqual([
      { status: 'pending', refunded_credits: '0' },
    ]);
    expect((await deliver(stripe.sign(event))).status).toBe(200);
    expect((await balanceOf(p)).byCategory.paid).toBe(100);
    // Stripe's retry of the same event now finds the completed purchase.
    const retried = await deliver(refund);
    expect(await retried.json()).toEqual({ received: true, outcome: 'handled' });
    expect((await balanceOf(p)).byCategory.paid).toBe(0);
    expect((await s.sql.query(`select status, refunded_credits from credits.purchases where id = $1`, [purchaseId])).rows).toEqual([
      { status: 'refunded', refunded_credits: '100' },
    ]);
  });

  it('a refund takes back credits of the lot that were held: on capture or release they go to payments, not the wallet', async () => {
    const p = await withBonus(await person());
    const owner = `user:${p.userId}`;
    const { purchaseId, paymentIntent, event } = await buy(p);
    expect((await deliver(stripe.sign(event))).status).toBe(200);
    expect((await balanceOf(p)).byCategory).toEqual({ daily: 5, promo: 150, paid: 100 });
    const holdOf = async (amount: number, idempotencyKey: string) => {
      const r = await call<{ id: string }>(v1('/reservations'), { token: p.token, body: { amount, appId: 'ai', idempotencyKey } });
      expect(r.status).toBe(201);
      return r.body.id;
    };
    const free = await holdOf(155, 'free'); // 5 daily + 150 promo
    const paid = await holdOf(60, 'paid'); // 60 of the paid lot: 40 left
    const refund = chargeRefunded(`evt_${randomUUID()}`, { paymentIntent, amount: 100, amountRefunded: 100 });
    expect((await deliver(stripe.sign(refund))).status).toBe(200);
    const purchase = async () =>
      (
        await s.sql.query<Record<string, string>>(
          `select status, refunded_credits, refund_shortfall from credits.purchases where id = $1`,
          [purchaseId],
        )
      ).rows[0];
    expect(await purchase()).toEqual({ status: 'refunded', refunded_credits: '40', refund_shortfall: '60' });
    // 20 of the paid hold are spent; the 40 it gives back belong to the refund.
    const captured = await call(v1(`/reservations/${paid}/capture`), { token: p.token, body: { amount: 20 } });
    expect(captured.status).toBe(200);
    expect(await purchase()).toEqual({ status: 'refunded', refunded_credits: '80', refund_shortfall: '20' });
    expect((await balanceOf(p)).byCategory.paid).toBe(0);
    // Releasing the free hold gives the free credit back (no purchase lot in it).
    expect((await call(v1(`/reservations/${free}/release`), { token: p.token, body: {} })).status).toBe(200);
    const after = await balanceOf(p);
    expect(after).toMatchObject({ available: 155, held: 0, byCategory: { daily: 5, promo: 150, paid: 0 } });
    expect(await purchase()).toEqual({ status: 'refunded', refunded_credits: '80', refund_shortfall: '20' });
    // Ledger, lots and cached balance agree; every transaction balances; payments got 80 back.
    const sums = await s.sql.query<Record<string, number>>(
      `select
         (select coalesce(sum(amount), 0) from credits.ledger_postings where owner = $1 and account = 'available')::int as ledger_available,
         (select coalesce(sum(amount), 0) from credits.ledger_postings where owner = $1 and account = 'held')::int as ledger_held,
         (select coalesce(sum(remaining), 0) from credits.grants where owner = $1)::int as lots,
         (select available from credits.wallets where owner = $1)::int as available,
         (select held from credits.wallets where owner = $1)::int as held,
         (select coalesce(sum(p.amount), 0) from credits.ledger_postings p join credits.ledger_transactions t on t.id = p.transaction_id
           where p.owner = $1 and p.account = 'system:payments' and t.kind = 'refund')::int as refunded,
         (select count(*) from (select transaction_id from credits.ledger_postings where owner = $1
           group by 1 having sum(amount) <> 0) x)::int as unbalanced`,
      [owner],
    );
    expect(sums.rows[0]).toEqual({
      ledger_available: 155,
      ledger_held: 0,
      lots: 155,
      available: 155,
      held: 0,
      refunded: 80,
      unbalanced: 0,
    });
  });

  it('a failing payment provider answers 502 PAYMENT_PROVIDER_ERROR', async () => {
    const p = await person();
    stripe.failNext(400);
    const r = await call<{ error: string }>(v1('/purchases'), { token: p.token, body: { packageId: 'mana-500' } });
    expect(r.status).toBe(502);
    expect(r.body.error).toBe('PAYMENT_PROVIDER_ERROR');
  });

  it('burns daily → promo → paid (free credit first), soonest expiry before all', async () => {
    const p = await withBonus(await person());
    const { event } = await buy(p);
    expect((await deliver(stripe.sign(event))).status).toBe(200);
    const spendAndSee = async (amount: number) => {
      expect((await call(v1('/use'), { token: p.token, body: { amount, appId: 'chat', description: 'x' } })).status).toBe(201);
      return (await balanceOf(p)).byCategory;
    };
    expect((await balanceOf(p)).byCategory).toEqual({ daily: 5, promo: 150, paid: 100 });
    expect(await spendAndSee(3)).toEqual({ daily: 2, promo: 150, paid: 100 });
    expect(await spendAndSee(52)).toEqual({ daily: 0, promo: 100, paid: 100 });
    expect(await spendAndSee(110)).toEqual({ daily: 0, promo: 0, paid: 90 });
  });

  it('daily free credit: granted once on the first reads of a window (even concurrent ones), never accumulates', async () => {
    const p = await withBonus(await person());
    const owner = `user:${p.userId}`;
    const first = await Promise.all(Array.from({ length: 8 }, () => balanceOf(p)));
    for (const b of first) expect(b.byCategory.daily).toBe(5);
    const daily = await s.sql.query(`select id from credits.grants where owner = $1 and category = 'daily'`, [owner]);
    expect(daily.rowCount).toBe(1);
    const b = first[0];
    expect(b.freeCreditsRemaining).toBe(155);
    expect(b.expiring).toHaveLength(1);
    expect(new Date(b.nextFreeRefillAt!).getTime()).toBe(new Date(b.expiring[0].expiresAt).getTime());
    // A day later (moved by SQL, no sleeping): the unused 5 expire to breakage, a fresh 5 arrive.
    await s.sql.query(`update credits.grants set expires_at = now() - interval '1 second' where owner = $1 and category = 'daily'`, [
      owner,
    ]);
    await s.sql.query(`update credits.wallets set next_daily_at = now() - interval '1 second' where owner = $1`, [owner]);
    const next = await balanceOf(p);
    expect(next.byCategory.daily).toBe(5);
    expect(next.available).toBe(155);
    const kinds = await s.sql.query(`select kind, amount from credits.ledger_transactions where owner = $1 order by seq`, [owner]);
    expect(kinds.rows.map((r: { kind: string; amount: string }) => `${r.kind}:${r.amount}`)).toEqual([
      'grant:150',
      'grant:5',
      'expire:-5',
      'grant:5',
    ]);
  });

  it('a paid checkout or a refund of an erased user: 200 outcome "erased", nothing granted, no wallet made', async () => {
    const p = await withBonus(await person());
    const { purchaseId, paymentIntent, event } = await buy(p);
    const requestId = randomUUID();
    await s.publish(createEvent('user.erasure.requested.v1', { requestId, userId: p.userId }));
    await s.waitForEvent(
      'user.erasure.completed.v1',
      (e) => e.type === 'user.erasure.completed.v1' && e.data.requestId === requestId && e.data.service === 'credits',
    );
    const completed = await deliver(stripe.sign(event));
    expect(completed.status).toBe(200);
    expect(await completed.json()).toEqual({ received: true, outcome: 'erased' });
    const refunded = await deliver(
      stripe.sign(chargeRefunded(`evt_${randomUUID()}`, { paymentIntent, amount: 100, amountRefunded: 100, purchaseId })),
    );
    expect(refunded.status).toBe(200);
    expect(await refunded.json()).toEqual({ received: true, outcome: 'erased' });
    // Recorded as handled: Stripe's next delivery of the same event is a duplicate, not a retry loop.
    expect(await (await deliver(stripe.sign(event))).json()).toEqual({ received: true, outcome: 'duplicate' });
    const owner = `user:${p.userId}`;
    const rows = await s.sql.query(
      `select 'wallets' as t from credits.wallets where owner = $1
       union all select 'grants' from credits.grants where owner = $1
       union all select 'ledger' from credits.ledger_transactions where owner = $1 or actor = $2
       union all select 'purchases' from credits.purchases where owner = $1 or actor = $2`,
      [owner, p.userId],
    );
    expect(rows.rows).toEqual([]);
    const purchase = await s.sql.query(`select status, grant_id from credits.purchases where id = $1`, [purchaseId]);
    expect(purchase.rows).toEqual([{ status: 'pending', grant_id: null }]);
  });
});
