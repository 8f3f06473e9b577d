import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { ALL_SERVICES, INSTANCES, loop, newUser, spendOne, tally, type ChaosUser, type Spend } from './helpers';

const OUTAGE_MS = 15_000;

/**
 * The broker goes away (every connection of every service instance and of the gateway cut at a TCP proxy,
 * new ones refused) while users register, sign in, spend credits and one of them is erased. Nothing the
 * system acknowledged may be lost or happen twice once the broker is back: the outboxes hold the events,
 * the consumers apply each once.
 */
describe('chaos: broker outage under load', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({
      services: [...ALL_SERVICES],
      instances: INSTANCES,
      proxyBroker: true,
      serviceEnv: { gdpr: { ERASURE_RETRY_MS: '2000' } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('loses no registration, spend or erasure and applies none twice', async () => {
    const proxy = s.brokerProxy;
    if (!proxy) throw new Error('the stack has no broker proxy');
    const users: ChaosUser[] = [];
    for (let i = 0; i < 6; i++) users.push(await newUser(s));
    const victim = users[0];
    const spenders = () => users.filter((u) => u !== victim);
    // Everyone registered before the outage has the signup bonus and a directory row.
    await eventually(
      async () => (await signupBonuses(s, users)) === users.length && (await directoryRows(s, users)) === users.length,
      30_000,
    );

    expect(proxy.connections()).toBeGreaterThan(0);
    proxy.cut();
    const until = Date.now() + OUTAGE_MS;
    const spends: Spend[] = [];
    let registered = 0;
    let statusUrl = '';
    await Promise.all([
      loop(2, until, async () => {
        users.push(await newUser(s));
        registered++;
      }),
      loop(3, until, async (w) => {
        const list = spenders();
        spends.push(await spendOne(s, list[(spends.length + w) % list.length]));
      }),
      (async () => {
        const res = await call<{ statusUrl: string }>(`${s.gatewayUrl}/api/v1/me/data`, {
          method: 'DELETE',
          token: victim.token,
          body: { confirm: 'DELETE' },
        });
        expect(res.status, JSON.stringify(res.body)).toBe(202);
        statusUrl = res.body.statusUrl;
      })(),
    ]);
    // The outage was real: nobody who registered during it has a bonus yet (their events wait in auth's outbox).
    const during = users.slice(6);
    expect(await signupBonuses(s, during)).toBe(0);
    proxy.restore();

    const acknowledged = spends.filter((x) => x.status === 200 || x.status === 201);
    console.info(
      `broker outage ${OUTAGE_MS / 1000} s: ${users.length} users (${registered} registered during it), ` +
        `spends ${JSON.stringify(tally(spends.map((x) => x.status)))}`,
    );
    // Spending needs no broker: the only refusal is a wallet that has not got its bonus yet (daily credit spent).
    expect(spends.every((x) => [200, 201, 402].includes(x.status))).toBe(true);
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(registered).toBeGreaterThan(0);

    const survivors = users.filter((u) => u !== victim);
    // Every registration reaches credits and admin once the outboxes drain: one bonus, one directory row each.
    await eventually(
      async () => (await signupBonuses(s, survivors)) === survivors.length && (await directoryRows(s, survivors)) === survivors.length,
      60_000,
      500,
    );
    const done = await eventually(
      async () => {
        const res = await call<{ status: string }>(statusUrl);
        return res.body.status === 'completed' ? res.body : undefined;
      },
      60_000,
      500,
    );
    expect(done.status).toBe('completed');
    expect(await directoryRows(s, [victim])).toBe(0);

    // No event was applied twice: exactly one bonus lot and one directory row per user, never more.
    const bonusRows = await s.sql.query<{ n: string }>(
      `select count(*) as n from credits.grants where source_key = any($1) group by source_key having count(*) > 1`,
      [survivors.map((u) => `signup:${u.userId}`)],
    );
    expect(bonusRows.rowCount).toBe(0);
    // Every acknowledged spend is in the ledger once; replaying it changes nothing.
    const ledger = await s.sql.query<{ owner: string; idempotency_key: string; n: string }>(
      `select owner, idempotency_key, count(*) as n from credits.ledger_transactions
        where kind = 'spend' and idempotency_key = any($1) group by owner, idempotency_key`,
      [acknowledged.map((x) => x.key)],
    );
    const found = new Map(ledger.rows.map((r) => [`${r.owner}|${r.idempotency_key}`, Number(r.n)]));
    for (const x of acknowledged) expect(found.get(`user:${x.user.userId}|${x.key}`), x.key).toBe(1);
    for (const x of acknowledged.slice(0, 20)) {
      const again = await call(`${s.gatewayUrl}/api/v1/credits/use`, {
        token: x.user.token,
        body: { amount: 1, appId: 'chaos', description: 'chaos spend', idempotencyKey: x.key },
      });
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotency-replayed')).toBe('true');
    }
    // The ledger sums agree with every wallet: available = the sum of the signed movements.
    const drift = await s.sql.query(
      `select w.owner from credits.wallets w
         left join (select owner, sum(amount) as total from credits.ledger_transactions group by owner) l using (owner)
        where w.owner like 'user:%' and w.available <> coalesce(l.total, 0)`,
    );
    expect(drift.rows).toEqual([]);
  });
});

async function signupBonuses(s: Stack, users: ChaosUser[]): Promise<number> {
  const res = await s.sql.query<{ n: string }>(`select count(*) as n from credits.grants where source_key = any($1)`, [
    users.map((u) => `signup:${u.userId}`),
  ]);
  return Number(res.rows[0]?.n ?? 0);
}

async function directoryRows(s: Stack, users: ChaosUser[]): Promise<number> {
  const res = await s.sql.query<{ n: string }>(`select count(*) as n from admin.directory_users where id = any($1)`, [
    users.map((u) => u.userId),
  ]);
  return Number(res.rows[0]?.n ?? 0);
}
