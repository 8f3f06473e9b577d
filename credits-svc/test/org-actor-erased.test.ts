import { randomUUID } from 'node:crypto';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, lockWaiters as lockWaitersOf } from '@mana/shared/testing';
import { enterOwnerScope, withWalletWrite, type Owner } from '../src/db/scope';
import { grantPromo } from '../src/domain/grants';
import { actorClaim, type LedgerPolicy } from '../src/domain/ledger';
import { startCheckout } from '../src/domain/purchases';
import { capture, hold, release } from '../src/domain/reservations';
import { spend, spendAlone } from '../src/domain/spend';
import { eraseCredits, pseudonymFor } from '../src/events/erasure';
import { startCreditsTestDb, type CreditsTestDb } from './harness';

const SECRET = 'org-actor-erased-test-secret-0123456789abcdef';

/**
 * An organization's wallet never names an erased member as actor: not a write after the member's erasure committed
 * (a token still valid, the membership cached), nor one racing it. The races are forced with a held transaction and
 * observed in pg_locks, never with timing. Before the fix every write here succeeded with the member's id as actor.
 */
describe('organization wallets and an erased actor', () => {
  let admin: CreditsTestDb['admin'];
  let db: CreditsTestDb['db'];
  let erase: CreditsTestDb['erase'];
  let stop: CreditsTestDb['stop'] | undefined;
  const policy = (): LedgerPolicy => ({ now: new Date(), dailyFree: 5, pseudonymOf: (id) => pseudonymFor(SECRET, id) });
  const gone = { code: 'WALLET_ERASED', status: 410 };

  beforeAll(async () => {
    ({ admin, db, erase, stop } = await startCreditsTestDb('org_actor', SECRET));
  });
  afterAll(async () => {
    await stop?.();
  });

  /** Rows of any wallet that name the user as actor. */
  const actorRows = async (userId: string) =>
    (
      await admin.query<{ ledger: number; purchases: number }>(
        `select (select count(*) from credits.ledger_transactions where actor = $1)::int as ledger,
                (select count(*) from credits.purchases where actor = $1)::int as purchases`,
        [userId],
      )
    ).rows[0];
  const pseudonymRows = async (userId: string) =>
    (await admin.query(`select 1 from credits.ledger_transactions where actor = $1`, [pseudonymFor(SECRET, userId)])).rowCount;
  const lockWaiters = () => lockWaitersOf(admin);

  /** An organization wallet with 100 promo credits. */
  async function fundedOrg(): Promise<Owner> {
    const org: Owner = `org:${randomUUID()}`;
    await withWalletWrite(db, org, (tx) => grantPromo(tx, { owner: org, amount: 100, reason: 'seed', idempotencyKey: 'seed' }, policy()));
    return org;
  }
  const spendInput = (owner: Owner, actor: string, idempotencyKey?: string) => ({
    owner,
    actor,
    amount: 1,
    appId: 'chat',
    description: 'org spend',
    idempotencyKey,
  });
  const orgSpend = (owner: Owner, actor: string) => {
    const input = spendInput(owner, actor);
    return withWalletWrite(db, owner, (tx) => spend(tx, input, policy()), { atomic: true, alone: () => spendAlone(db, input, policy()) });
  };

  it('after the erasure: spends, holds, captures, releases and checkouts on an org wallet answer 410, no row names the member', async () => {
    const org = await fundedOrg();
    const member = randomUUID();
    const other = randomUUID();
    // Holds the member made before the erasure, resolved after it.
    const h1 = await withWalletWrite(db, org, (tx) =>
      hold(tx, { owner: org, actor: member, amount: 2, appId: 'ai', ttlSeconds: 600, idempotencyKey: 'h1' }, policy()),
    );
    const h2 = await withWalletWrite(db, org, (tx) =>
      hold(tx, { owner: org, actor: member, amount: 2, appId: 'ai', ttlSeconds: 600, idempotencyKey: 'h2' }, policy()),
    );
    if ('insufficient' in h1 || 'insufficient' in h2) throw new Error('seeded org wallet too small');
    await erase(member);
    expect(await actorRows(member)).toEqual({ ledger: 0, purchases: 0 });
    expect(await pseudonymRows(member)).toBe(2);

    // The one-round-trip spend, the spend in a transaction (batched path), with and without an idempotency key.
    await expect(spendAlone(db, spendInput(org, member), policy())).rejects.toMatchObject(gone);
    await expect(
      withWalletWrite(db, org, (tx) => spend(tx, spendInput(org, member, 'k1'), policy()), { atomic: true }),
    ).rejects.toMatchObject(gone);
    await expect(
      withWalletWrite(db, org, (tx) =>
        hold(tx, { owner: org, actor: member, amount: 1, appId: 'ai', ttlSeconds: 60, idempotencyKey: 'h3' }, policy()),
      ),
    ).rejects.toMatchObject(gone);
    await expect(withWalletWrite(db, org, (tx) => capture(tx, org, member, h1.reservation.id, 1, policy()))).rejects.toMatchObject(gone);
    await expect(withWalletWrite(db, org, (tx) => release(tx, org, member, h2.reservation.id, policy()))).rejects.toMatchObject(gone);
    const checkout = { db, policy, stripe: {} as Stripe, returnUrl: 'http://localhost' };
    await expect(
      startCheckout(checkout, org, member, { id: 'mana-100', name: 'x', credits: 100, priceCents: 100, currency: 'eur' }),
    ).rejects.toMatchObject(gone);
    expect(await actorRows(member)).toEqual({ ledger: 0, purchases: 0 });

    // Another member, never erased, spends and resolves holds as before; and so does the org wallet's other traffic.
    expect(await orgSpend(org, other)).toMatchObject({ body: { balance: 100 - 4 - 1 } });
    expect(await withWalletWrite(db, org, (tx) => release(tx, org, other, h2.reservation.id, policy()))).toMatchObject({
      status: 'released',
    });
    expect(await actorRows(other)).toEqual({ ledger: 2, purchases: 0 });
  });

  it("an org spend while the member's erasure is not committed: it waits for the erasure and is refused", async () => {
    const org = await fundedOrg();
    const member = randomUUID();
    let release = () => undefined as void;
    let erased = () => undefined as void;
    const gate = new Promise<void>((r) => (release = r));
    const started = new Promise<void>((r) => (erased = r));
    // The erasure took the member's lock, wrote the tombstone and pseudonymized their rows, and holds its commit.
    const erasure = db.transaction(async (tx) => {
      await eraseCredits(SECRET)(tx, member);
      erased();
      await gate;
    });
    await started;
    let answered = false;
    const spending = Promise.allSettled([orgSpend(org, member)]).finally(() => (answered = true));
    // The spend either commits at once (before the fix, with the member's id as actor) or waits for the erasure.
    await eventually(async () => (answered || (await lockWaiters()) >= 1 ? true : undefined));
    release();
    await erasure;
    const [result] = await spending;
    expect(result).toMatchObject({ status: 'rejected', reason: gone });
    expect(await actorRows(member)).toEqual({ ledger: 0, purchases: 0 });
  });

  it('an org spend not committed yet when the erasure starts: the erasure waits and pseudonymizes it', async () => {
    const org = await fundedOrg();
    const member = randomUUID();
    let release = () => undefined as void;
    let spent = () => undefined as void;
    const gate = new Promise<void>((r) => (release = r));
    const started = new Promise<void>((r) => (spent = r));
    // The member's spend has written its ledger row and holds its commit.
    const spending = db.transaction(async (tx) => {
      await enterOwnerScope(tx, org);
      const r = await spend(tx, spendInput(org, member), policy());
      spent();
      await gate;
      return r;
    });
    await started;
    let done = false;
    const erasure = erase(member).finally(() => (done = true));
    // The erasure either commits at once (before the fix: its pseudonymize statement cannot see the pending row) or
    // waits for the spend.
    await eventually(async () => (done || (await lockWaiters()) >= 1 ? true : undefined));
    release();
    expect(await spending).toMatchObject({ body: { balance: 99 } });
    await erasure;
    expect(await actorRows(member)).toEqual({ ledger: 0, purchases: 0 });
    expect(await pseudonymRows(member)).toBe(1);
  });
  it("a batch of two members' holds and a batch erasure of both: the batch claims them in order, no deadlock, both 410", async () => {
    const org = await fundedOrg();
    // The erasure helper erases a batch in user id order: a first, b second. The batch's writes come b first.
    const [a, b] = [randomUUID(), randomUUID()].sort();
    if (!a || !b) throw new Error('two ids');
    const holdBy = (actor: string, key: string) =>
      withWalletWrite(
        db,
        org,
        (tx) => hold(tx, { owner: org, actor, amount: 1, appId: 'ai', ttlSeconds: 600, idempotencyKey: key }, policy()),
        { claim: actorClaim(org, actor, policy()) },
      );
    let next = () => undefined as void;
    let aErased = () => undefined as void;
    const gate = new Promise<void>((r) => (next = r));
    const started = new Promise<void>((r) => (aErased = r));
    const blocker = await admin.connect();
    try {
      // A spend of another member runs alone and waits for the wallet's row lock: the two holds queue behind it and
      // go to the database as one batch.
      await blocker.query('begin');
      await blocker.query(`select 1 from credits.wallets where owner = $1 for update`, [org]);
      const first = orgSpend(org, randomUUID());
      await eventually(async () => ((await lockWaiters()) >= 1 ? true : undefined));
      const holds = Promise.allSettled([holdBy(b, 'hb'), holdBy(a, 'ha')]);
      // The batch erasure erased a (its lock held exclusively) and has not reached b.
      const erasure = db.transaction(async (tx) => {
        await eraseCredits(SECRET)(tx, a);
        aErased();
        await gate;
        await eraseCredits(SECRET)(tx, b);
      });
      await started;
      await blocker.query('commit');
      await first;
      // The batch waits for a's lock: fixed, before anything else; before, holding b's claim and the wallet's lock.
      await eventually(async () => ((await lockWaiters()) >= 1 ? true : undefined));
      next();
      await erasure;
      const results = await holds;
      expect(results).toMatchObject([
        { status: 'rejected', reason: gone },
        { status: 'rejected', reason: gone },
      ]);
    } finally {
      blocker.release();
    }
    expect(await actorRows(a)).toEqual({ ledger: 0, purchases: 0 });
    expect(await actorRows(b)).toEqual({ ledger: 0, purchases: 0 });
  });
});
