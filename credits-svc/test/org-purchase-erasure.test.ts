import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, lockWaiters as lockWaitersOf } from '@mana/shared/testing';
import type { LedgerPolicy } from '../src/domain/ledger';
import { handleStripeEvent } from '../src/domain/purchases';
import { eraseCredits, pseudonymFor } from '../src/events/erasure';
import { completionOf } from './fake-stripe';
import { startCreditsTestDb, type CreditsTestDb } from './harness';

const SECRET = 'org-purchase-erasure-test-secret-0123456789abcdef';
/** The advisory lock the test's gate trigger waits for (bigint key space, apart from the service's two-key locks). */
const GATE = 730_001;

/**
 * Stripe's completion of an organization's purchase and the buyer's erasure, in both orders: whichever takes the
 * purchase's row lock first, no row keeps the buyer's id. The completion claims nothing (the webhook has no user to
 * claim); the purchase's lock is what orders the two. Forced with locks held by another connection and observed in
 * pg_locks, never with timing.
 */
describe('an org purchase completed while its buyer is erased', () => {
  let admin: CreditsTestDb['admin'];
  let db: CreditsTestDb['db'];
  let erase: CreditsTestDb['erase'];
  let stop: CreditsTestDb['stop'] | undefined;
  const policy = (): LedgerPolicy => ({ now: new Date(), dailyFree: 5, pseudonymOf: (id) => pseudonymFor(SECRET, id) });

  beforeAll(async () => {
    ({ admin, db, erase, stop } = await startCreditsTestDb('org_purchase_erasure', SECRET));
  });
  afterAll(async () => {
    await stop?.();
  });

  const lockWaiters = () => lockWaitersOf(admin);

  /** A pending purchase of an organization, bought by `buyer`. */
  async function orgPurchase(buyer: string): Promise<{ org: string; purchaseId: string }> {
    const org = `org:${randomUUID()}`;
    const purchaseId = randomUUID();
    await admin.query(
      `insert into credits.purchases (id, owner, actor, package_id, credits, amount_cents, currency, status, stripe_session_id)
       values ($1, $2, $3, 'mana-100', 100, 100, 'eur', 'pending', $4)`,
      [purchaseId, org, buyer, `cs_${purchaseId}`],
    );
    return { org, purchaseId };
  }
  /** The purchase's and its grant row's actor, and how many rows anywhere still name the buyer. */
  async function actors(purchaseId: string, buyer: string) {
    const r = await admin.query<{ purchase: string; ledger: string | null; named: number }>(
      `select p.actor as purchase,
              (select t.actor from credits.ledger_transactions t where t.purchase_id = p.id and t.kind = 'grant') as ledger,
              ((select count(*) from credits.ledger_transactions where actor = $2)
               + (select count(*) from credits.purchases where actor = $2))::int as named
         from credits.purchases p where p.id = $1`,
      [purchaseId, buyer],
    );
    return r.rows[0];
  }

  it('pseudonymize_user keeps its owner, SECURITY DEFINER and grants after its redefinition', async () => {
    const r = await admin.query<{ owner: string; definer: boolean; app: boolean }>(
      `select pg_get_userbyid(p.proowner) as owner, p.prosecdef as definer,
              has_function_privilege('credits_app', p.oid, 'execute') as app
         from pg_proc p where p.oid = 'credits.pseudonymize_user(text, text)'::regprocedure`,
    );
    expect(r.rows[0]).toEqual({ owner: 'credits_maint', definer: true, app: true });
  });

  it('the completion holds the purchase when the erasure starts: the erasure waits and pseudonymizes the grant row', async () => {
    const buyer = randomUUID();
    const { purchaseId } = await orgPurchase(buyer);
    // The completion stops after it inserted the grant's ledger row, at its update of the purchase (a trigger waiting
    // for an advisory lock the test holds), with the purchase locked FOR UPDATE and nothing committed.
    await admin.query(`create function public.test_gate() returns trigger language plpgsql as $$
      begin perform pg_advisory_xact_lock(${GATE}); return new; end $$`);
    await admin.query(`create trigger test_gate before update on credits.purchases
      for each row when (old.status = 'pending' and new.status = 'completed') execute function public.test_gate()`);
    const blocker = await admin.connect();
    try {
      await blocker.query('begin');
      await blocker.query(`select pg_advisory_xact_lock(${GATE})`);
      const completing = handleStripeEvent(db, completionOf(purchaseId), policy());
      await eventually(async () => ((await lockWaiters()) >= 1 ? true : undefined));
      let erased = false;
      const erasure = erase(buyer).finally(() => (erased = true));
      // The erasure waits for the purchase's lock: fixed, at its first statement; before, after its ledger update,
      // which could not see the uncommitted grant row.
      await eventually(async () => (erased || (await lockWaiters()) >= 2 ? true : undefined));
      await blocker.query('commit');
      expect(await completing).toBe('handled');
      await erasure;
    } finally {
      blocker.release();
      await admin.query(`drop trigger if exists test_gate on credits.purchases; drop function if exists public.test_gate()`);
    }
    const pseudonym = pseudonymFor(SECRET, buyer);
    expect(await actors(purchaseId, buyer)).toEqual({ purchase: pseudonym, ledger: pseudonym, named: 0 });
  });

  it('the erasure updated the purchase first: the completion waits and writes the pseudonym as actor', async () => {
    const buyer = randomUUID();
    const { purchaseId } = await orgPurchase(buyer);
    let commit = () => undefined as void;
    let erasedUncommitted = () => undefined as void;
    const gate = new Promise<void>((r) => (commit = r));
    const started = new Promise<void>((r) => (erasedUncommitted = r));
    // The erasure has pseudonymized the purchase (and holds its row lock) and has not committed.
    const erasure = db.transaction(async (tx) => {
      await eraseCredits(SECRET)(tx, buyer);
      erasedUncommitted();
      await gate;
    });
    await started;
    let answered = false;
    const completing = handleStripeEvent(db, completionOf(purchaseId), policy()).finally(() => (answered = true));
    await eventually(async () => (answered || (await lockWaiters()) >= 1 ? true : undefined));
    expect(answered).toBe(false);
    commit();
    await erasure;
    expect(await completing).toBe('handled');
    const pseudonym = pseudonymFor(SECRET, buyer);
    expect(await actors(purchaseId, buyer)).toEqual({ purchase: pseudonym, ledger: pseudonym, named: 0 });
  });
});
