import { randomUUID } from 'node:crypto';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, lockWaiters as lockWaitersOf } from '@mana/shared/testing';
import { enterOwnerScope, withOwnerScope, withWalletWrite, type Owner } from '../src/db/scope';
import { balanceOf } from '../src/domain/balance';
import { grantPromo, grantSignupBonus } from '../src/domain/grants';
import type { LedgerPolicy } from '../src/domain/ledger';
import { handleStripeEvent, startCheckout } from '../src/domain/purchases';
import { hold } from '../src/domain/reservations';
import { spend, spendAlone } from '../src/domain/spend';
import { pseudonymFor } from '../src/events/erasure';
import { chargeRefunded, completionOf } from './fake-stripe';
import { startCreditsTestDb, type CreditsTestDb } from './harness';

const SECRET = 'erased-wallet-test-secret-0123456789abcdef';

/**
 * An erased user's wallet never comes back: after the erasure committed (a spend with a token still valid, a late
 * user.registered.v1, a promo grant, a hold, a checkout, Stripe's completion or refund, a balance read) and while it
 * runs (a grant or a completion waiting behind it for the wallet, a signup bonus creating the wallet under it).
 * Before the fix every one of these made a new `user:<id>` wallet (and most a lot and ledger rows).
 */
describe('erased users: no wallet is made for them again', () => {
  let admin: CreditsTestDb['admin'];
  let db: CreditsTestDb['db'];
  let erase: CreditsTestDb['erase'];
  let stop: CreditsTestDb['stop'] | undefined;
  const policy = (dailyFree = 5): LedgerPolicy => ({ now: new Date(), dailyFree, pseudonymOf: (id) => pseudonymFor(SECRET, id) });

  beforeAll(async () => {
    ({ admin, db, erase, stop } = await startCreditsTestDb('erased_wallet', SECRET));
  });
  afterAll(async () => {
    await stop?.();
  });

  /** Every row that names the user's wallet (wallets, lots, ledger, postings, holds, purchases). */
  async function rowsOf(userId: string): Promise<Record<string, number>> {
    const r = await admin.query<Record<string, number>>(
      `select (select count(*) from credits.wallets where owner = $1)::int as wallets,
              (select count(*) from credits.grants where owner = $1)::int as grants,
              (select count(*) from credits.ledger_transactions where owner = $1 or actor = $2)::int as ledger,
              (select count(*) from credits.ledger_postings where owner = $1)::int as postings,
              (select count(*) from credits.reservations where owner = $1)::int as reservations,
              (select count(*) from credits.purchases where owner = $1 or actor = $2)::int as purchases`,
      [`user:${userId}`, userId],
    );
    return r.rows[0] ?? {};
  }
  const none = { wallets: 0, grants: 0, ledger: 0, postings: 0, reservations: 0, purchases: 0 };

  /** A user with the signup bonus (150), a pending purchase, then erased. */
  async function erasedUser(): Promise<{ userId: string; owner: Owner; purchaseId: string }> {
    const userId = randomUUID();
    const owner: Owner = `user:${userId}`;
    await withOwnerScope(db, owner, (tx) => grantSignupBonus(tx, userId, owner, 150, policy()));
    const purchaseId = randomUUID();
    await admin.query(
      `insert into credits.purchases (id, owner, actor, package_id, credits, amount_cents, currency, status, stripe_session_id, stripe_payment_intent)
       values ($1, $2, $3, 'mana-100', 100, 100, 'eur', 'pending', $4, $5)`,
      [purchaseId, owner, userId, `cs_${purchaseId}`, `pi_${purchaseId}`],
    );
    await erase(userId);
    expect(await rowsOf(userId)).toEqual(none);
    return { userId, owner, purchaseId };
  }

  const spendInput = (owner: Owner, userId: string) => ({ owner, actor: userId, amount: 1, appId: 'chat', description: 'late' });

  it('after the erasure: spends, grants, holds and checkouts answer 410 WALLET_ERASED; events and reads create nothing', async () => {
    const { userId, owner, purchaseId } = await erasedUser();
    const p = policy();
    const gone = { code: 'WALLET_ERASED', status: 410 };
    // A spend (the one-round-trip path finds no wallet and hands over to the steps that would create it).
    expect(await spendAlone(db, spendInput(owner, userId), p)).toBeUndefined();
    await expect(withWalletWrite(db, owner, (tx) => spend(tx, spendInput(owner, userId), p), { atomic: true })).rejects.toMatchObject(gone);
    await expect(
      withWalletWrite(db, owner, (tx) => grantPromo(tx, { owner, amount: 10, reason: 'promo', idempotencyKey: 'k1' }, p)),
    ).rejects.toMatchObject(gone);
    await expect(
      withWalletWrite(db, owner, (tx) =>
        hold(tx, { owner, actor: userId, amount: 1, appId: 'ai', ttlSeconds: 60, idempotencyKey: 'h1' }, p),
      ),
    ).rejects.toMatchObject(gone);
    const checkout = { db, policy, stripe: {} as Stripe, returnUrl: 'http://localhost' };
    await expect(
      startCheckout(checkout, owner, userId, { id: 'mana-100', name: 'x', credits: 100, priceCents: 100, currency: 'eur' }),
    ).rejects.toMatchObject(gone);
    // A late user.registered.v1: dropped.
    expect(await withOwnerScope(db, owner, (tx) => grantSignupBonus(tx, userId, owner, 150, p))).toBe('erased');
    // Stripe's completion and refund of the erased user's purchase: acknowledged as 'erased', nothing granted.
    expect(await handleStripeEvent(db, completionOf(purchaseId), p)).toBe('erased');
    const refund = chargeRefunded(`evt_${randomUUID()}`, { paymentIntent: `pi_${purchaseId}`, amount: 100, amountRefunded: 100 });
    expect(await handleStripeEvent(db, refund as unknown as Stripe.Event, p)).toBe('erased');
    // A balance read (daily credit on): the answer of a user without a wallet, and no wallet or daily lot made.
    expect(await balanceOf(db, owner, p)).toMatchObject({ balance: 0, totalEarned: 0, byCategory: { daily: 0, promo: 0, paid: 0 } });
    expect(await rowsOf(userId)).toEqual(none);
    // The tombstone is the pseudonym only.
    const tomb = await admin.query(`select pseudonym from credits.erased_users where pseudonym = $1 or pseudonym like '%' || $2 || '%'`, [
      pseudonymFor(SECRET, userId),
      userId,
    ]);
    expect(tomb.rows).toEqual([{ pseudonym: pseudonymFor(SECRET, userId) }]);
  });

  it('a user never erased still gets a wallet on first use; an erasure of a user without a wallet leaves a tombstone', async () => {
    const fresh = randomUUID();
    const owner: Owner = `user:${fresh}`;
    await withOwnerScope(db, owner, (tx) => grantSignupBonus(tx, fresh, owner, 150, policy()));
    expect(await rowsOf(fresh)).toMatchObject({ wallets: 1, grants: 1, ledger: 1 });
    const never = randomUUID();
    await erase(never);
    const late: Owner = `user:${never}`;
    const outcome = await withOwnerScope(db, late, (tx) => grantSignupBonus(tx, never, late, 150, policy()));
    expect(await rowsOf(never)).toEqual(none);
    expect(outcome).toBe('erased');
  });

  // --- forced interleavings --------------------------------------------------------------------------------------

  const lockWaiters = () => lockWaitersOf(admin);
  const waitersReach = (n: number) => eventually(async () => ((await lockWaiters()) >= n ? true : undefined));

  it('a signup bonus creating the wallet while the erasure runs: the erasure waits for it and removes it', async () => {
    const userId = randomUUID();
    const owner: Owner = `user:${userId}`;
    // Another transaction's uncommitted wallet row makes the bonus wait at its wallet INSERT: after it found no wallet
    // (and, fixed, after it took the owner's lock and found no tombstone).
    let granted: unknown;
    const blocker = await admin.connect();
    try {
      await blocker.query('begin');
      await blocker.query(`insert into credits.wallets (owner) values ($1)`, [owner]);
      const bonus = db.transaction(async (tx) => {
        await enterOwnerScope(tx, owner);
        return grantSignupBonus(tx, userId, owner, 150, policy());
      });
      await waitersReach(1);
      let erased = false;
      const erasure = erase(userId).then((r) => ((erased = true), r));
      // The erasure either ran through (before the fix: it saw no wallet) or waits for the bonus's transaction.
      await eventually(async () => (erased || (await lockWaiters()) >= 2 ? true : undefined));
      await blocker.query('rollback');
      granted = await bonus;
      await erasure;
    } finally {
      blocker.release();
    }
    expect(await rowsOf(userId)).toEqual(none);
    expect(granted).toBe('granted');
    expect(await withOwnerScope(db, owner, (tx) => grantSignupBonus(tx, userId, owner, 150, policy()))).toBe('erased');
  });

  /**
   * The wallet exists and is locked (by a spend, say): the erasure queues for it first, then `write` does. When the
   * lock goes, the erasure deletes the wallet and `write` finds none (before the fix it made a new one).
   */
  async function behindErasure<T>(
    write: (owner: Owner, userId: string) => Promise<T>,
  ): Promise<{ userId: string; result: PromiseSettledResult<T> }> {
    const userId = randomUUID();
    const owner: Owner = `user:${userId}`;
    await withOwnerScope(db, owner, (tx) => grantSignupBonus(tx, userId, owner, 150, policy()));
    const purchaseId = randomUUID();
    await admin.query(
      `insert into credits.purchases (id, owner, actor, package_id, credits, amount_cents, currency, status, stripe_session_id)
       values ($1, $2, $3, 'mana-100', 100, 100, 'eur', 'pending', $4)`,
      [purchaseId, owner, userId, `cs_${purchaseId}`],
    );
    const blocker = await admin.connect();
    try {
      await blocker.query('begin');
      await blocker.query(`select 1 from credits.wallets where owner = $1 for update`, [owner]);
      const erasure = erase(userId);
      await waitersReach(1);
      const late = Promise.allSettled([write(owner, purchaseId)]);
      await waitersReach(2);
      await blocker.query('commit');
      await erasure;
      const [result] = await late;
      return { userId, result: result as PromiseSettledResult<T> };
    } finally {
      blocker.release();
    }
  }

  it('a promo grant waiting for the wallet behind the erasure: 410 WALLET_ERASED, nothing made', async () => {
    const { userId, result } = await behindErasure((owner) =>
      withWalletWrite(db, owner, (tx) => grantPromo(tx, { owner, amount: 10, reason: 'promo', idempotencyKey: 'k1' }, policy())),
    );
    expect(result).toMatchObject({ status: 'rejected', reason: { code: 'WALLET_ERASED', status: 410 } });
    expect(await rowsOf(userId)).toEqual(none);
  });

  it('a spend waiting for the wallet behind the erasure: 410 WALLET_ERASED, nothing made', async () => {
    const { userId, result } = await behindErasure((owner, purchaseId) => {
      void purchaseId;
      const input = spendInput(owner, owner.slice('user:'.length));
      return withWalletWrite(db, owner, (tx) => spend(tx, input, policy()), { atomic: true, alone: () => spendAlone(db, input, policy()) });
    });
    expect(result).toMatchObject({ status: 'rejected', reason: { code: 'WALLET_ERASED', status: 410 } });
    expect(await rowsOf(userId)).toEqual(none);
  });

  it('a checkout completion waiting for the wallet behind the erasure: acknowledged as erased, nothing made', async () => {
    const { userId, result } = await behindErasure((_owner, purchaseId) => handleStripeEvent(db, completionOf(purchaseId), policy()));
    expect(result).toEqual({ status: 'fulfilled', value: 'erased' });
    expect(await rowsOf(userId)).toEqual(none);
  });
});
