import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { strongPassword, uniqueEmail } from '../helpers/users';
import { INSTANCES, loop, tally } from './helpers';

const BURST_MS = 10_000;

/**
 * One auth-svc instance (its own process) is SIGKILLed during a burst of registrations — mid-request, and
 * with its outbox relay somewhere between publishing `user.registered.v1` and marking the row published —
 * then started again. Every user that exists gets exactly one signup bonus and one directory row: an event
 * published twice (the other instance's relay, or this one after the restart, sends the unmarked row again)
 * is applied once.
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
});
