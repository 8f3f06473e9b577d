import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { ALL_SERVICES, INSTANCES, newUser, spendOne, type ChaosUser } from './helpers';

/**
 * An erasure participant dies between consuming an erasure request and acknowledging it: both credits-svc
 * instances (own processes) run with the failpoint `erasure.before-ack`, which SIGKILLs the process right after
 * the transaction that erased a user (and wrote its answer to the outbox) committed, before the broker hears the
 * ack. Whichever instance takes a request dies; the broker hands the unacknowledged requests to the other, which
 * dies the same way — so both end dead, every request back in the queue, some wallets already closed. Started
 * again (without the failpoint), the instances get every request redelivered: each erasure completes, and each
 * wallet was closed in the ledger exactly once (a redelivered request that had committed erases nothing more).
 */
describe('chaos: an erasure participant killed (SIGKILL) between consuming and acknowledging', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({
      services: [...ALL_SERVICES],
      instances: INSTANCES,
      spawn: ['credits'],
      serviceEnv: {
        credits: { MANA_FAILPOINT: 'erasure.before-ack' },
        // No re-ask from the coordinator during the test: every request in the queue is one the broker kept.
        gdpr: { ERASURE_RETRY_MS: '600000' },
      },
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
    const died = s.instances.credits.map((_, i) => s.exited('credits', i));

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
    const timeout = new Promise((r) => setTimeout(() => r('still running'), 30_000));
    expect(await Promise.all(died.map((d) => Promise.race([d, timeout])))).toEqual(died.map(() => 'SIGKILL'));
    // Each death came after a commit: at least one wallet is closed, and no request was acknowledged.
    const closedWhileDead = (await closes(s)) - closesBefore;
    expect(closedWhileDead).toBeGreaterThanOrEqual(1);
    expect(closedWhileDead).toBeLessThanOrEqual(erase.length);
    await eventually(async () => (await queued(s)) === erase.length, 30_000, 250);
    console.info(`erasure.before-ack: both credits-svc died, ${closedWhileDead} of ${erase.length} wallets closed, every request requeued`);

    await Promise.all(s.instances.credits.map((_, i) => s.revive('credits', i, { MANA_FAILPOINT: '' })));
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

/** Ready messages in credits-svc's erasure queue (none of them being handled: no consumer is up). */
async function queued(s: Stack): Promise<number> {
  const conn = await amqp.connect(s.env.AMQP_URL ?? '');
  try {
    const ch = await conn.createChannel();
    return (await ch.checkQueue(`${s.env.AMQP_QUEUE_PREFIX}credits`)).messageCount;
  } finally {
    await conn.close();
  }
}

async function closes(s: Stack): Promise<number> {
  const res = await s.sql.query<{ n: string }>(`select count(*) as n from credits.ledger_transactions where kind = 'close'`);
  return Number(res.rows[0]?.n ?? 0);
}
