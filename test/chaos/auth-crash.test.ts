import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { strongPassword, uniqueEmail } from '../helpers/users';
import { INSTANCES, loop, tally } from './helpers';

const BURST_MS = 10_000;

/**
 * auth-svc processes are SIGKILLed: first one instance during a burst of registrations (wherever it happens to
 * be — mid-request, mid-commit, mid-relay), then one at an exact point, its outbox relay between the broker's
 * confirm of `user.registered.v1` and marking the row published (the failpoint `outbox.after-publish`). Every
 * user that exists gets exactly one signup bonus and one directory row: an event published twice is applied once.
 */
describe('chaos: auth-svc killed (SIGKILL) during a registration burst', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ services: ['credits', 'admin'], instances: INSTANCES, spawn: ['auth'] });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('creates each user once and applies each registration event once', async () => {
    const statuses: number[] = [];
    const emails: string[] = [];
    const until = Date.now() + BURST_MS;
    await Promise.all([
      loop(3, until, async () => {
        const email = uniqueEmail('crash');
        emails.push(email);
        const res = await call(`${s.gatewayUrl}/api/v1/auth/register`, { body: { email, password: strongPassword() } });
        statuses.push(res.status);
      }),
      (async () => {
        await new Promise((r) => setTimeout(r, BURST_MS / 3));
        await s.crash('auth', 0);
        await new Promise((r) => setTimeout(r, BURST_MS / 6));
        await s.revive('auth', 0);
      })(),
    ]);
    console.info(`SIGKILL of auth-svc during ${statuses.length} registrations: ${JSON.stringify(tally(statuses))}`);
    // A lost answer is the gateway's 502/503; nothing else fails.
    expect(statuses.filter((x) => ![201, 502, 503].includes(x))).toEqual([]);

    const created = await s.sql.query<{ id: string }>(`select id from auth."user" where email = any($1)`, [emails]);
    const ids = created.rows.map((r) => r.id);
    // Every acknowledged registration exists.
    expect(ids.length).toBeGreaterThanOrEqual(statuses.filter((x) => x === 201).length);
    await eventually(
      async () => {
        const bonus = await s.sql.query<{ n: string }>(`select count(*) as n from credits.grants where source_key = any($1)`, [
          ids.map((id) => `signup:${id}`),
        ]);
        const dir = await s.sql.query<{ n: string }>(`select count(*) as n from admin.directory_users where id = any($1)`, [ids]);
        return Number(bonus.rows[0]?.n) === ids.length && Number(dir.rows[0]?.n) === ids.length;
      },
      45_000,
      500,
    );
    // Never twice: one bonus lot per user (the unique source key), one bonus movement in the ledger.
    const twice = await s.sql.query(
      `select owner from credits.ledger_transactions where owner = any($1) and kind = 'grant' group by owner having count(*) > 1`,
      [ids.map((id) => `user:${id}`)],
    );
    expect(twice.rows).toEqual([]);
  });

  it('publishes an event twice when the relay dies between the confirm and the mark, and applies it once', async () => {
    // Nothing left to relay (a pending row would trip the failpoint at start), then only one instance, armed.
    await eventually(async () => (await pendingOutbox(s)) === 0, 30_000, 250);
    for (let i = 0; i < INSTANCES; i++) await s.crash('auth', i);
    await s.revive('auth', 0, { MANA_FAILPOINT: 'outbox.after-publish' });
    const died = s.exited('auth', 0);

    const email = uniqueEmail('failpoint');
    const res = await call(`${s.gatewayUrl}/api/v1/auth/register`, { body: { email, password: strongPassword() } });
    // The relay runs right after the commit: the answer may or may not have left before the process died.
    expect([201, 502, 503]).toContain(res.status);
    expect(await Promise.race([died, sleep(30_000).then(() => 'still running')])).toBe('SIGKILL');
    const user = await s.sql.query<{ id: string }>(`select id from auth."user" where email = $1`, [email]);
    const userId = user.rows[0]?.id ?? '';
    const row = await s.sql.query<{ id: string; published_at: Date | null }>(
      `select id, published_at from auth.outbox where type = 'user.registered.v1' and envelope->'data'->>'userId' = $1`,
      [userId],
    );
    // The broker confirmed it (the observer's queue has it), the row was not marked.
    expect(row.rows).toHaveLength(1);
    expect(row.rows[0]?.published_at).toBeNull();
    const eventId = row.rows[0]?.id ?? '';
    const deliveries = () => s.events.filter((e) => e.id === eventId).length;
    await eventually(() => deliveries() === 1, 10_000);

    await s.revive('auth', 0); // (auth[1] stays down: nothing here needs it)
    // The restarted relay publishes the unmarked row again, once (and marks it: deleted, no retention here).
    await eventually(async () => (await pendingOutbox(s)) === 0 && deliveries() >= 2, 30_000, 100);
    expect(deliveries()).toBe(2);
    await eventually(
      async () => {
        const e = await effects(s, userId, eventId);
        return e.bonuses === 1 && e.directory === 1;
      },
      30_000,
      250,
    );
    // Delivered twice, applied once: one bonus lot, one grant in the ledger, one directory row, one marker per consumer.
    expect(await effects(s, userId, eventId)).toEqual({ bonuses: 1, grants: 1, directory: 1, creditsMarkers: 1, adminMarkers: 1 });
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pendingOutbox(s: Stack): Promise<number> {
  const res = await s.sql.query<{ n: string }>(`select count(*) as n from auth.outbox where published_at is null`);
  return Number(res.rows[0]?.n ?? 0);
}

/** What one `user.registered.v1` did downstream, counted row by row (a marker per consumer that handled it). */
async function effects(s: Stack, userId: string, eventId: string): Promise<Record<string, number>> {
  const res = await s.sql.query<Record<string, string>>(
    `select (select count(*) from credits.grants where source_key = 'signup:' || $1) as bonuses,
            (select count(*) from credits.ledger_transactions where owner = 'user:' || $1 and kind = 'grant') as grants,
            (select count(*) from admin.directory_users where id = $1) as directory,
            (select count(*) from credits.processed_messages where message_id = $2) as "creditsMarkers",
            (select count(*) from admin.processed_messages where message_id = $2) as "adminMarkers"`,
    [userId, eventId],
  );
  return Object.fromEntries(Object.entries(res.rows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
}
