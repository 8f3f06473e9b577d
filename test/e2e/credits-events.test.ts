import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type EventEnvelope } from '@mana/shared';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { STACK_SERVICE_KEY, startStack, type Stack } from '../helpers/stack';
import { login, registerVerified, strongPassword, uniqueEmail } from '../helpers/users';

const PSEUDONYM_SECRET = 'credits-e2e-pseudonym-secret-0123456789abcdef';

/** credits-svc's consumers over the real bus: the signup bonus exactly once, and erasure. */
describe('credits-svc: signup bonus and erasure over RabbitMQ', () => {
  let s: Stack;
  const v1 = (path: string) => `${s.gatewayUrl}/api/v1/credits${path}`;
  const signupLots = async (userId: string) =>
    (await s.sql.query(`select amount from credits.grants where source_key = $1`, [`signup:${userId}`])).rows.map((r: { amount: string }) =>
      Number(r.amount),
    );

  beforeAll(async () => {
    s = await startStack({
      services: ['credits'],
      proxyAuthBroker: true,
      serviceEnv: { credits: { CREDITS_DAILY_FREE: '0', CREDITS_PSEUDONYM_SECRET: PSEUDONYM_SECRET } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('grants the signup bonus exactly once when user.registered.v1 is delivered twice or published again', async () => {
    const { userId, email, password } = await registerVerified(s);
    await eventually(async () => ((await signupLots(userId)).length === 1 ? true : undefined));
    const original = s.events.find(
      (e) => e.type === 'user.registered.v1' && e.data.userId === userId,
    ) as EventEnvelope<'user.registered.v1'>;
    expect(original).toBeTruthy();
    // The same message again (a redelivery) and a new event for the same user (a re-publish).
    const again = createEvent('user.registered.v1', { userId, email });
    await s.publish(original, again);
    await s.waitForEvent('user.registered.v1', (e) => e.id === again.id);
    await eventually(async () => {
      const r = await s.sql.query(
        `select 1 from credits.processed_messages where consumer = 'credits.user-registered' and message_id = $1`,
        [again.id],
      );
      return r.rowCount === 1 ? true : undefined;
    });
    expect(await signupLots(userId)).toEqual([150]);
    const token = (await login(s, email, password)).accessToken;
    const b = await call<{ balance: number; byCategory: Record<string, number>; totalEarned: number }>(v1('/balance'), { token });
    expect(b.body).toMatchObject({ balance: 150, byCategory: { daily: 0, promo: 150, paid: 0 }, totalEarned: 150 });
  });

  it('grants the bonus once RabbitMQ is back when it was down at sign-up', async () => {
    const proxy = s.authBrokerProxy;
    if (!proxy) throw new Error('proxy expected');
    const email = uniqueEmail('credits-outage');
    let userId = '';
    proxy.cut();
    try {
      const reg = await call<{ user: { id: string } }>(`${s.gatewayUrl}/api/v1/auth/register`, {
        body: { email, password: strongPassword() },
      });
      expect(reg.status).toBe(201);
      userId = reg.body.user.id;
      expect(await signupLots(userId)).toEqual([]);
    } finally {
      proxy.restore();
    }
    await eventually(async () => ((await signupLots(userId)).length === 1 ? true : undefined), 30_000);
    expect(await signupLots(userId)).toEqual([150]);
  });

  it('erasure: wallet, lots and holds go; ledger and purchases stay under a keyed pseudonym; the answer repeats', async () => {
    const { userId, email, password } = await registerVerified(s);
    await eventually(async () => ((await signupLots(userId)).length === 1 ? true : undefined));
    const token = (await login(s, email, password)).accessToken;
    expect((await call(v1('/use'), { token, body: { amount: 30, appId: 'chat', description: 'hello' } })).status).toBe(201);
    expect((await call(v1('/reservations'), { token, body: { amount: 20, appId: 'ai', idempotencyKey: 'h1' } })).status).toBe(201);
    await s.sql.query(
      `insert into credits.purchases (id, owner, actor, package_id, credits, amount_cents, currency, status) values ($1, $2, $3, 'mana-100', 100, 100, 'eur', 'pending')`,
      [randomUUID(), `user:${userId}`, userId],
    );
    const requestId = randomUUID();
    await s.publish(createEvent('user.erasure.requested.v1', { requestId, userId }));
    const done = await s.waitForEvent(
      'user.erasure.completed.v1',
      (e) => e.type === 'user.erasure.completed.v1' && e.data.requestId === requestId && e.data.service === 'credits',
    );
    expect(done.data).toMatchObject({
      userId,
      service: 'credits',
      deleted: { wallets: 1, grants: 1, reservations: 1, reservation_allocations: 1 },
      retained: { ledger_transactions: 4, purchases: 1 },
    });
    const pseudonym = `erased:${createHmac('sha256', PSEUDONYM_SECRET).update(userId).digest('hex')}`;
    // Nothing in the schema names the user any more (the outbox's completion event aside, which the saga needs).
    const leftovers = await s.sql.query(
      `select 'wallets' as t from credits.wallets where owner like '%' || $1 || '%'
       union all select 'grants' from credits.grants where owner like '%' || $1 || '%' or source_key like '%' || $1 || '%'
       union all select 'ledger' from credits.ledger_transactions where owner like '%' || $1 || '%' or actor = $1
       union all select 'postings' from credits.ledger_postings where owner like '%' || $1 || '%'
       union all select 'purchases' from credits.purchases where owner like '%' || $1 || '%' or actor = $1
       union all select 'reservations' from credits.reservations where owner like '%' || $1 || '%'`,
      [userId],
    );
    expect(leftovers.rows).toEqual([]);
    const kept = await s.sql.query<{ kind: string; actor: string | null }>(
      `select kind, actor from credits.ledger_transactions where owner = $1 order by seq`,
      [pseudonym],
    );
    expect(kept.rows.map((r) => r.kind)).toEqual(['grant', 'spend', 'hold', 'close']);
    expect(kept.rows[1]?.actor).toBe(pseudonym);
    const balanced = await s.sql.query<{ n: number }>(
      `select count(*)::int as n from (select transaction_id from credits.ledger_postings where owner = $1 group by 1 having sum(amount) <> 0) x`,
      [pseudonym],
    );
    expect(balanced.rows[0]?.n).toBe(0);
    // Closed to breakage: the retained ledger says the wallet ended at zero.
    const closed = await s.sql.query<{ n: number }>(
      `select coalesce(sum(amount), 0)::int as n from credits.ledger_postings where owner = $1 and account in ('available', 'held')`,
      [pseudonym],
    );
    expect(closed.rows[0]?.n).toBe(0);
    const data = await call<{ balance: { available: number }; transactions: unknown[]; grants: unknown[] }>(
      `${s.gatewayUrl}/api/v1/internal/credits/users/${userId}/data`,
      { headers: { 'x-service-key': STACK_SERVICE_KEY } },
    );
    expect(data.body).toMatchObject({ balance: { available: 0 }, transactions: [], grants: [] });

    // The coordinator asking again gets the same answer, and nothing more is erased.
    const again = createEvent('user.erasure.requested.v1', { requestId, userId });
    await s.publish(again);
    await eventually(() =>
      s.events.filter((e) => e.type === 'user.erasure.completed.v1' && e.data.requestId === requestId && e.data.service === 'credits')
        .length === 2
        ? true
        : undefined,
    );
    const answers = s.events.filter(
      (e) => e.type === 'user.erasure.completed.v1' && e.data.requestId === requestId && e.data.service === 'credits',
    );
    expect(answers[1]?.data).toEqual(answers[0]?.data);
  });

  it('erasure clears the free text of the ledger rows it keeps (description, metadata, idempotency key, request hash); the sums still agree', async () => {
    const { userId, email, password } = await registerVerified(s);
    await eventually(async () => ((await signupLots(userId)).length === 1 ? true : undefined));
    const token = (await login(s, email, password)).accessToken;
    const owner = `user:${userId}`;
    // Free text that names the person, in every column an app can fill.
    const said = `lunch with ${email}`;
    const spent = await call(v1('/use'), {
      token,
      body: { amount: 7, appId: 'chat', description: said, idempotencyKey: `key-${email}`, metadata: { note: said } },
    });
    expect(spent.status).toBe(201);
    const held = await call<{ id: string }>(v1('/reservations'), {
      token,
      body: { amount: 5, appId: 'ai', description: said, idempotencyKey: `hold-${email}` },
    });
    expect(held.status).toBe(201);
    expect((await call(v1(`/reservations/${held.body.id}/capture`), { token, body: { amount: 3 } })).status).toBe(200);
    // Before erasure the guard refuses to clear the text of a live (not pseudonymized) row, even for the table owner.
    await expect(s.sql.query(`update credits.ledger_transactions set description = null where owner = $1`, [owner])).rejects.toThrow(
      /append-only/,
    );
    const bookkeeping = `select kind, amount::int, balance_after::int as "balanceAfter", grant_category as "grantCategory", app_id as "appId"
       from credits.ledger_transactions where owner = $1 and kind <> 'close' order by seq`;
    const before = (await s.sql.query(bookkeeping, [owner])).rows;
    expect(before.map((r: { kind: string }) => r.kind)).toEqual(['grant', 'spend', 'hold', 'capture']);

    const requestId = randomUUID();
    await s.publish(createEvent('user.erasure.requested.v1', { requestId, userId }));
    await s.waitForEvent(
      'user.erasure.completed.v1',
      (e) => e.type === 'user.erasure.completed.v1' && e.data.requestId === requestId && e.data.service === 'credits',
    );
    const pseudonym = `erased:${createHmac('sha256', PSEUDONYM_SECRET).update(userId).digest('hex')}`;
    const kept = await s.sql.query(
      `select kind, description, metadata, idempotency_key, request_hash from credits.ledger_transactions where owner = $1 order by seq`,
      [pseudonym],
    );
    expect(kept.rows.map((r: { kind: string }) => r.kind)).toEqual(['grant', 'spend', 'hold', 'capture', 'close']);
    for (const r of kept.rows) expect(r).toMatchObject({ description: null, metadata: null, idempotency_key: null, request_hash: null });
    // No row anywhere in the ledger holds the text any more.
    const traces = await s.sql.query(
      `select seq from credits.ledger_transactions
        where description like '%' || $1 || '%' or metadata::text like '%' || $1 || '%' or idempotency_key like '%' || $1 || '%'`,
      [email],
    );
    expect(traces.rows).toEqual([]);
    // The bookkeeping is what it was, every transaction balances, and the closed wallet ends at zero.
    expect((await s.sql.query(bookkeeping, [pseudonym])).rows).toEqual(before);
    const sums = await s.sql.query<{ unbalanced: number; wallet: number; revenue: number }>(
      `select
         (select count(*) from (select transaction_id from credits.ledger_postings where owner = $1 group by 1 having sum(amount) <> 0) x)::int as unbalanced,
         (select coalesce(sum(amount), 0) from credits.ledger_postings where owner = $1 and account in ('available', 'held'))::int as wallet,
         (select coalesce(sum(amount), 0) from credits.ledger_postings where owner = $1 and account = 'system:revenue')::int as revenue`,
      [pseudonym],
    );
    expect(sums.rows[0]).toEqual({ unbalanced: 0, wallet: 0, revenue: 10 });
    // Erasure is the only change the ledger allows: no new text, no other column, even on a pseudonymized row.
    await expect(
      s.sql.query(`update credits.ledger_transactions set description = 'restored' where owner = $1`, [pseudonym]),
    ).rejects.toThrow(/append-only/);
    await expect(
      s.sql.query(`update credits.ledger_transactions set amount = 0, description = null where owner = $1`, [pseudonym]),
    ).rejects.toThrow(/append-only/);
  });

  it('after the erasure: a late user.registered.v1 is dropped, a backend’s spend or grant answers 410 WALLET_ERASED, nothing comes back', async () => {
    const { userId, email } = await registerVerified(s);
    await eventually(async () => ((await signupLots(userId)).length === 1 ? true : undefined));
    const requestId = randomUUID();
    await s.publish(createEvent('user.erasure.requested.v1', { requestId, userId }));
    await s.waitForEvent(
      'user.erasure.completed.v1',
      (e) => e.type === 'user.erasure.completed.v1' && e.data.requestId === requestId && e.data.service === 'credits',
    );
    const original = s.events.find((e) => e.type === 'user.registered.v1' && e.data.userId === userId);
    if (!original) throw new Error('user.registered.v1 expected');
    // The first event delivered again (its id was processed: nothing), and one with a new id (a late re-publish).
    const late = createEvent('user.registered.v1', { userId, email });
    await s.publish(original, late);
    await eventually(async () => {
      const r = await s.sql.query(
        `select 1 from credits.processed_messages where consumer = 'credits.user-registered' and message_id = $1`,
        [late.id],
      );
      return r.rowCount === 1 ? true : undefined;
    });
    // A backend charging the user and a promo grant (the user's own token is refused as revoked once auth-svc erased
    // them; the domain test covers the routes' answer when it is not yet).
    const internal = { 'x-service-key': STACK_SERVICE_KEY };
    const charged = await call(`${s.gatewayUrl}/api/v1/internal/credits/use`, {
      headers: internal,
      body: { userId, amount: 1, appId: 'chat', description: 'late', idempotencyKey: 'late-1' },
    });
    expect(charged).toMatchObject({ status: 410, body: { error: 'WALLET_ERASED' } });
    const granted = await call(`${s.gatewayUrl}/api/v1/internal/credits/grants`, {
      headers: internal,
      body: { userId, amount: 5, category: 'promo', reason: 'late promo', idempotencyKey: 'late-2' },
    });
    expect(granted).toMatchObject({ status: 410, body: { error: 'WALLET_ERASED' } });
    const owner = `user:${userId}`;
    const rows = await s.sql.query(
      `select 'wallets' as t from credits.wallets where owner = $1
       union all select 'grants' from credits.grants where owner = $1
       union all select 'ledger' from credits.ledger_transactions where owner = $1 or actor = $2
       union all select 'postings' from credits.ledger_postings where owner = $1`,
      [owner, userId],
    );
    expect(rows.rows).toEqual([]);
  });
});
