import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { INSTANCES, loop, newUser, spendOne, tally, type ChaosUser, type Spend } from './helpers';

const BURST_MS = 10_000;

/**
 * One credits-svc instance is SIGKILLed in the middle of a spend burst (and of signup bonuses being
 * granted), then started again. A spend whose answer was lost is retried with its idempotency key, as a
 * client would: afterwards every spend is in the ledger exactly once, every wallet equals the sum of its
 * ledger, and every user has exactly one signup bonus.
 */
describe('chaos: credits-svc killed (SIGKILL) during a spend burst', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ services: ['credits'], instances: INSTANCES, spawn: ['credits'] });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('loses no spend, applies none twice, and the ledger sums agree', async () => {
    const users: ChaosUser[] = [];
    for (let i = 0; i < 4; i++) users.push(await newUser(s));
    await eventually(async () => (await bonuses(s, users)) === users.length, 30_000, 250);

    const spends: Spend[] = [];
    const until = Date.now() + BURST_MS;
    let registered = 0;
    await Promise.all([
      loop(4, until, async (w) => {
        spends.push(await spendOne(s, users[(spends.length + w) % 4]));
      }),
      loop(1, until, async () => {
        users.push(await newUser(s));
        registered++;
      }),
      (async () => {
        await new Promise((r) => setTimeout(r, BURST_MS / 4));
        await s.crash('credits', 0);
        await new Promise((r) => setTimeout(r, BURST_MS / 4));
        await s.revive('credits', 0);
      })(),
    ]);
    console.info(`SIGKILL during ${spends.length} spends: ${JSON.stringify(tally(spends.map((x) => x.status)))}, ${registered} registered`);
    // A lost answer is a gateway error (502/503), never a 500 from the service.
    expect(spends.filter((x) => ![200, 201, 402, 502, 503].includes(x.status))).toEqual([]);

    // The client retries what it does not know the outcome of, with the same key: applied once either way.
    const unknown = spends.filter((x) => x.status >= 500);
    for (const x of unknown) {
      const again = await call(`${s.gatewayUrl}/api/v1/credits/use`, {
        token: x.user.token,
        body: { amount: 1, appId: 'chaos', description: 'chaos spend', idempotencyKey: x.key },
      });
      expect([200, 201, 402]).toContain(again.status);
      x.status = again.status;
    }
    const applied = spends.filter((x) => x.status === 200 || x.status === 201);
    const ledger = await s.sql.query<{ idempotency_key: string; n: string }>(
      `select idempotency_key, count(*) as n from credits.ledger_transactions where kind = 'spend' and idempotency_key = any($1) group by idempotency_key`,
      [spends.map((x) => x.key)],
    );
    const counts = new Map(ledger.rows.map((r) => [r.idempotency_key, Number(r.n)]));
    for (const x of applied) expect(counts.get(x.key), x.key).toBe(1);
    // A spend refused (402) is not in the ledger.
    for (const x of spends.filter((y) => y.status === 402)) expect(counts.get(x.key)).toBeUndefined();

    // Every registration during the crash got exactly one bonus (the event was redelivered, applied once).
    await eventually(async () => (await bonuses(s, users)) === users.length, 30_000, 250);
    const dup = await s.sql.query(
      `select source_key from credits.grants where source_key like 'signup:%' group by source_key having count(*) > 1`,
    );
    expect(dup.rows).toEqual([]);
    const drift = await s.sql.query(
      `select w.owner from credits.wallets w
         left join (select owner, sum(amount) as total from credits.ledger_transactions group by owner) l using (owner)
        where w.available <> coalesce(l.total, 0)`,
    );
    expect(drift.rows).toEqual([]);
  });
});

async function bonuses(s: Stack, users: ChaosUser[]): Promise<number> {
  const res = await s.sql.query<{ n: string }>(`select count(*) as n from credits.grants where source_key = any($1)`, [
    users.map((u) => `signup:${u.userId}`),
  ]);
  return Number(res.rows[0]?.n ?? 0);
}
