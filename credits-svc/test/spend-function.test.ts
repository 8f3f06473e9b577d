import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, createLogger, runMigrations } from '@mana/shared';
import { createTestDatabase, testPool, type TestDatabase } from '@mana/shared/testing';
import * as tables from '../src/db/schema';
import { creditsDb } from '../src/db/scope';
import { spendAlone } from '../src/domain/spend';
import { pseudonymFor } from '../src/events/erasure';

const MIGRATIONS = fileURLToPath(new URL('../drizzle', import.meta.url));
const DAY = 24 * 3600_000;

interface Answer {
  status: string;
  available: string | null;
  tx: { id: string; amount: number; balance_after: number; grant_category: string | null; idempotency_key: string | null } | null;
}

/**
 * `credits.spend` (migration 0005) on the real database as the service role: the steps of the TypeScript spend in one
 * statement — burn order, postings, key replay — and the cases it leaves to TypeScript without changing anything.
 */
describe('credits.spend: the spend in one statement', () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase('credits_spend_fn');
    pool = testPool(db.url, 2);
    pool.on('error', () => undefined);
    await runMigrations(pool, { folder: MIGRATIONS, schema: 'credits', logger: createLogger('spend-fn-test', 'silent') });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  /** A wallet with lots (as the table owner, past row-level security); returns the lot ids by name. */
  async function wallet(owner: string, lots: Record<string, { category: string; amount: number; expiresAt?: Date }>) {
    const total = Object.values(lots).reduce((s, l) => s + l.amount, 0);
    await pool.query(`insert into credits.wallets (owner, available, total_earned) values ($1, $2, $2)`, [owner, total]);
    const ids: Record<string, string> = {};
    let n = 0;
    for (const [name, l] of Object.entries(lots)) {
      const { rows } = await pool.query<{ id: string }>(
        `insert into credits.grants (id, owner, category, amount, remaining, expires_at, source_key, created_at)
         values (gen_random_uuid(), $1, $2, $3, $3, $4, $5, now() - make_interval(secs => $6)) returning id`,
        [owner, l.category, l.amount, l.expiresAt ?? null, `${owner}:${name}`, 100 - n++],
      );
      ids[name] = rows[0].id;
    }
    return ids;
  }

  /** One call as the service role scoped to `scope` (the route's transaction). */
  async function spend(scope: string, args: { owner?: string; amount: number; key?: string; hash?: string; dailyFree?: number }) {
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query(`select set_config('role', 'credits_app', true), set_config('app.owner', $1, true)`, [scope]);
      const { rows } = await client.query<Answer>(
        `select * from credits.spend($1, 'actor-1', $2, 'chat', 'a reply', $3, $4, '{"k":1}'::jsonb, now(), $5, gen_random_uuid())`,
        [args.owner ?? scope, args.amount, args.key ?? null, args.hash ?? null, args.dailyFree ?? 0],
      );
      await client.query('commit');
      return rows[0];
    } catch (err) {
      await client.query('rollback');
      throw err;
    } finally {
      client.release();
    }
  }

  const remaining = async (owner: string) =>
    Object.fromEntries(
      (await pool.query<{ id: string; remaining: string }>(`select id, remaining from credits.grants where owner = $1`, [owner])).rows.map(
        (r) => [r.id, Number(r.remaining)],
      ),
    );

  it('burns soonest expiry first, then daily → promo → paid, then oldest; posts balanced; the key replays', async () => {
    const owner = 'user:burn';
    const soon = new Date(Date.now() + DAY);
    // Older lots first: on the same expiry the category decides before age (daily before the older promo).
    const lots = await wallet(owner, {
      paidNoExpiry: { category: 'paid', amount: 10 },
      promoLater: { category: 'promo', amount: 4, expiresAt: new Date(Date.now() + 2 * DAY) },
      promoSameExpiry: { category: 'promo', amount: 2, expiresAt: soon },
      dailySooner: { category: 'daily', amount: 3, expiresAt: soon },
    });
    const first = await spend(owner, { amount: 8, key: 'k1', hash: 'h1' });
    expect(first).toMatchObject({
      status: 'ok',
      available: '11',
      tx: { amount: -8, balance_after: 11, grant_category: null, idempotency_key: 'k1' },
    });
    // daily (3) and promo (2) of the soonest expiry, then 3 of the later promo lot; paid untouched.
    expect(await remaining(owner)).toEqual({
      [lots.dailySooner]: 0,
      [lots.promoSameExpiry]: 0,
      [lots.promoLater]: 1,
      [lots.paidNoExpiry]: 10,
    });
    const postings = await pool.query<{ account: string; grant_id: string | null; amount: string }>(
      `select account, grant_id, amount from credits.ledger_postings where transaction_id = $1 order by id`,
      [first.tx!.id],
    );
    expect(postings.rows.map((p) => [p.account, p.grant_id, Number(p.amount)])).toEqual([
      ['available', lots.dailySooner, -3],
      ['available', lots.promoSameExpiry, -2],
      ['available', lots.promoLater, -3],
      ['system:revenue', null, 8],
    ]);
    const w = await pool.query(`select available::int, total_spent::int, version from credits.wallets where owner = $1`, [owner]);
    expect(w.rows[0]).toEqual({ available: 11, total_spent: 8, version: 1 });

    // The same key and request: the first answer, nothing debited; another request with the key: refused.
    expect(await spend(owner, { amount: 8, key: 'k1', hash: 'h1' })).toMatchObject({ status: 'replay', tx: { id: first.tx!.id } });
    expect(await spend(owner, { amount: 8, key: 'k1', hash: 'other' })).toMatchObject({ status: 'key_reused', tx: null });
    // One lot alone names its category.
    expect(await spend(owner, { amount: 1 })).toMatchObject({ status: 'ok', available: '10', tx: { grant_category: 'promo' } });
    expect(await spend(owner, { amount: 11 })).toEqual({ status: 'insufficient', available: '10', tx: null });
    const sums = await pool.query<{ wallet: number; ledger: number; lots: number }>(
      `select (select available from credits.wallets where owner = $1)::int as wallet,
              (select sum(amount) from credits.ledger_postings where owner = $1 and account = 'available')::int as ledger,
              (select sum(remaining) from credits.grants where owner = $1)::int as lots`,
      [owner],
    );
    // The wallet was filled outside the ledger here, so the ledger holds only the spends (−9).
    expect(sums.rows[0]).toEqual({ wallet: 10, ledger: -9, lots: 10 });
  });

  it('leaves a new wallet, an expired lot and a due daily refill to TypeScript, changing nothing', async () => {
    expect(await spend('user:nobody', { amount: 1 })).toEqual({ status: 'maintain', available: null, tx: null });
    expect((await pool.query(`select 1 from credits.wallets where owner = 'user:nobody'`)).rowCount).toBe(0);

    const expired = 'user:expired';
    const lots = await wallet(expired, {
      old: { category: 'promo', amount: 5, expiresAt: new Date(Date.now() - 1000) },
      paid: { category: 'paid', amount: 5 },
    });
    expect(await spend(expired, { amount: 1 })).toMatchObject({ status: 'maintain' });
    expect(await remaining(expired)).toEqual({ [lots.old]: 5, [lots.paid]: 5 });

    const due = 'user:due';
    await wallet(due, { paid: { category: 'paid', amount: 5 } });
    expect(await spend(due, { amount: 1, dailyFree: 5 })).toMatchObject({ status: 'maintain' });
    // Organization wallets get no daily credit: nothing is due there.
    const org = 'org:acme';
    await wallet(org, { paid: { category: 'paid', amount: 5 } });
    expect(await spend(org, { amount: 1, dailyFree: 5 })).toMatchObject({ status: 'ok', available: '4' });
    expect(
      (await pool.query(`select count(*)::int as n from credits.ledger_transactions where owner in ($1, $2)`, [expired, due])).rows,
    ).toEqual([{ n: 0 }]);
  });

  it('spends only from the wallet in scope, and only positive amounts', async () => {
    await wallet('user:victim', { paid: { category: 'paid', amount: 5 } });
    await expect(spend('user:attacker', { owner: 'user:victim', amount: 1 })).rejects.toMatchObject({ code: '42501' });
    await expect(spend('user:victim', { amount: 0 })).rejects.toMatchObject({ code: '22023' });
    await expect(spend('user:victim', { amount: -5 })).rejects.toMatchObject({ code: '22023' });
    expect((await pool.query(`select available::int from credits.wallets where owner = 'user:victim'`)).rows).toEqual([{ available: 5 }]);
  });

  it('spendAlone (one round trip, values quoted into the SQL) stores quotes, backslashes and SQL text as they came', async () => {
    await wallet('user:quoted', { paid: { category: 'paid', amount: 5 } });
    const database = createDatabase({ url: db.url, schema: tables, max: 1 });
    try {
      const input = {
        owner: 'user:quoted' as const,
        actor: "o'brien",
        amount: 2,
        appId: 'app\\x',
        description: `it's a "quote" \\ ''; drop table credits.wallets; --`,
        idempotencyKey: "key'1",
        metadata: { note: "a'b\\c", n: 1 },
      };
      const policy = { now: new Date(), dailyFree: 0, pseudonymOf: (id: string) => pseudonymFor('spend-test-secret-0123456789abcdef', id) };
      const first = await spendAlone(creditsDb(database), input, policy);
      expect(first).toMatchObject({ replayed: false, body: { balance: 3, transaction: { amount: -2, description: input.description } } });
      expect(await spendAlone(creditsDb(database), input, policy)).toMatchObject({ replayed: true, body: { balance: 3 } });
      const row = await pool.query(
        `select actor, app_id, description, idempotency_key, metadata from credits.ledger_transactions where owner = 'user:quoted'`,
      );
      expect(row.rows).toEqual([
        {
          actor: input.actor,
          app_id: input.appId,
          description: input.description,
          idempotency_key: input.idempotencyKey,
          metadata: input.metadata,
        },
      ]);
      // A wallet that needs the TypeScript steps: nothing done, undefined.
      expect(
        await spendAlone(creditsDb(database), { ...input, owner: 'user:nowallet', idempotencyKey: undefined }, policy),
      ).toBeUndefined();
    } finally {
      await database.close();
    }
  });

  it('try_spend answers a failure as status error and leaves the transaction usable (no savepoint needed around it)', async () => {
    await wallet('user:batch', { paid: { category: 'paid', amount: 5 } });
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query(`select set_config('role', 'credits_app', true), set_config('app.owner', 'user:batch', true)`);
      const call = (owner: string, amount: number) =>
        client.query<Answer>(`select * from credits.try_spend($1, 'a', $2, 'chat', 'd', null, null, null, now(), 0, gen_random_uuid())`, [
          owner,
          amount,
        ]);
      expect((await call('user:batch', 2)).rows[0]).toMatchObject({ status: 'ok', available: '3' });
      const failed = (await call('user:other', 1)).rows[0];
      expect(failed).toMatchObject({ status: 'error', available: null, tx: { sqlstate: '42501' } });
      // The same transaction goes on: the next spend of the batch and the commit work.
      expect((await call('user:batch', 1)).rows[0]).toMatchObject({ status: 'ok', available: '2' });
      await client.query('commit');
    } finally {
      client.release();
    }
    const w = await pool.query(`select available::int, total_spent::int from credits.wallets where owner = 'user:batch'`);
    expect(w.rows).toEqual([{ available: 2, total_spent: 3 }]);
  });
});
