import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { ALL_SERVICES, INSTANCES, newUser, spendOne, type ChaosUser } from './helpers';

/**
 * An erasure participant dies while it works: both credits-svc instances (own processes) are SIGKILLed right
 * after three erasures were requested — while the requests are being consumed, before they are acknowledged —
 * and started again. The broker redelivers what was not acknowledged: every erasure completes, and each
 * wallet was closed in the ledger exactly once.
 */
describe('chaos: an erasure participant killed (SIGKILL) between consuming and acknowledging', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({
      services: [...ALL_SERVICES],
      instances: INSTANCES,
      spawn: ['credits'],
      serviceEnv: { gdpr: { ERASURE_RETRY_MS: '2000' } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('completes every erasure once the participant is back, closing each wallet once', async () => {
    const users: ChaosUser[] = [];
    for (let i = 0; i < 4; i++) users.push(await newUser(s));
    for (const u of users) expect((await spendOne(s, u)).status).toBe(201);
    const [keep, ...erase] = users;
    const closesBefore = await closes(s);

    const statusUrls = await Promise.all(
      erase.map(async (u) => {
        const res = await call<{ statusUrl: string }>(`${s.gatewayUrl}/api/v1/me/data`, {
          method: 'DELETE',
          token: u.token,
          body: { confirm: 'DELETE' },
        });
        expect(res.status).toBe(202);
        return res.body.statusUrl;
      }),
    );
    await Promise.all(s.instances.credits.map((_, i) => s.crash('credits', i)));
    for (let i = 0; i < INSTANCES; i++) await s.revive('credits', i);

    for (const url of statusUrls) {
      const done = await eventually(
        async () => {
          const res = await call<{ status: string; services: Record<string, { status: string }> }>(url);
          return res.body.status === 'completed' ? res.body : undefined;
        },
        60_000,
        500,
      );
      expect(done.services.credits?.status).toBe('completed');
    }
    // Each erased wallet closed once (a redelivered request found nothing left to close), none of them left.
    expect((await closes(s)) - closesBefore).toBe(erase.length);
    const left = await s.sql.query(`select owner from credits.wallets where owner = any($1)`, [erase.map((u) => `user:${u.userId}`)]);
    expect(left.rows).toEqual([]);
    const rows = await s.sql.query(`select id from credits.ledger_transactions where owner = any($1)`, [
      erase.map((u) => `user:${u.userId}`),
    ]);
    expect(rows.rows).toEqual([]);
    // The survivor's wallet is untouched and still serves.
    expect((await spendOne(s, keep)).status).toBe(201);
  });
});

async function closes(s: Stack): Promise<number> {
  const res = await s.sql.query<{ n: string }>(`select count(*) as n from credits.ledger_transactions where kind = 'close'`);
  return Number(res.rows[0]?.n ?? 0);
}
