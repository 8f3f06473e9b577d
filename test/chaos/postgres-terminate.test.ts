import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login } from '../helpers/users';
import { ALL_SERVICES, INSTANCES, loop, newUser, spendOne, tally, type ChaosUser } from './helpers';

const LOAD_MS = 12_000;
const KILL_EVERY_MS = 1_500;

/**
 * Every database connection of every service is terminated (`pg_terminate_backend`) again and again while
 * requests run: a request caught by it fails fast with 503 (the JSON error shape, never a 500), and every
 * service recovers on its own — the pools reconnect, no restart.
 */
describe('chaos: PostgreSQL connections terminated under load', () => {
  let s: Stack;
  let admin: pg.Client;
  beforeAll(async () => {
    s = await startStack({ services: [...ALL_SERVICES], instances: INSTANCES });
    admin = new pg.Client({ connectionString: s.db.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await s?.close();
  });

  /** Terminates every connection to the stack's database but the test's own (services log in as their own roles). */
  const terminateAll = async () => {
    const res = await admin.query<{ n: string }>(
      `select count(*) filter (where pg_terminate_backend(pid)) as n from pg_stat_activity
        where datname = current_database() and usename <> current_user`,
    );
    return Number(res.rows[0]?.n ?? 0);
  };

  it('answers 503 while connections die and recovers without a restart', async () => {
    const users: ChaosUser[] = [];
    for (let i = 0; i < 4; i++) users.push(await newUser(s));

    const statuses: number[] = [];
    const bodies: unknown[] = [];
    let slowestFailureMs = 0;
    let terminated = 0;
    const timed = async (fn: () => Promise<{ status: number; body?: unknown }>) => {
      const t0 = performance.now();
      const res = await fn();
      statuses.push(res.status);
      if (res.status >= 500) {
        bodies.push(res.body);
        slowestFailureMs = Math.max(slowestFailureMs, performance.now() - t0);
      }
    };
    const until = Date.now() + LOAD_MS;
    await Promise.all([
      loop(4, until, async (w) => {
        const u = users[(statuses.length + w) % users.length];
        const kind = statuses.length % 4;
        if (kind === 0) await timed(() => call(`${s.gatewayUrl}/api/v1/auth/login`, { body: { email: u.email, password: u.password } }));
        else if (kind === 1) await timed(() => call(`${s.gatewayUrl}/api/v1/credits/balance`, { token: u.token }));
        else if (kind === 2) await timed(() => call(`${s.gatewayUrl}/api/v1/me/encryption-vault/status`, { token: u.token }));
        else
          await timed(() =>
            call(`${s.gatewayUrl}/api/v1/credits/use`, {
              token: u.token,
              body: { amount: 1, appId: 'chaos', description: 'chaos spend', idempotencyKey: randomUUID() },
            }),
          );
      }),
      loop(1, until, async () => {
        terminated += await terminateAll();
        await new Promise((r) => setTimeout(r, KILL_EVERY_MS));
      }),
    ]);
    console.info(
      `pg_terminate_backend: ${terminated} connections over ${LOAD_MS / 1000} s; answers ${JSON.stringify(tally(statuses))}; ` +
        `slowest failure ${Math.round(slowestFailureMs)} ms`,
    );
    expect(terminated).toBeGreaterThan(0);
    // A caught request is a 503 with the error shape; nothing else fails (402: a wallet spent dry).
    expect(
      statuses.filter((x) => ![200, 201, 402, 503].includes(x)),
      JSON.stringify(bodies.slice(0, 5)),
    ).toEqual([]);
    for (const b of bodies) expect(b).toMatchObject({ error: expect.stringMatching(/^[A-Z_]+$/), requestId: expect.any(String) });

    // Recovery, without restarting anything: every route of every user works again.
    await eventually(
      async () => {
        for (const u of users) {
          if ((await call(`${s.gatewayUrl}/api/v1/credits/balance`, { token: u.token })).status !== 200) return false;
          if ((await call(`${s.gatewayUrl}/api/v1/me/encryption-vault/status`, { token: u.token })).status !== 200) return false;
          if ((await call(`${s.gatewayUrl}/api/v1/me/data`, { token: u.token })).status !== 200) return false;
        }
        return true;
      },
      20_000,
      250,
    );
    for (const u of users) expect((await login(s, u.email, u.password)).accessToken).toEqual(expect.any(String));
    const spent = await spendOne(s, users[0]);
    expect([201, 402]).toContain(spent.status);
    // No half-written movement: every wallet equals the sum of its ledger.
    const drift = await admin.query(
      `select w.owner from credits.wallets w
         left join (select owner, sum(amount) as total from credits.ledger_transactions group by owner) l using (owner)
        where w.available <> coalesce(l.total, 0) and w.owner like 'user:%'`,
    );
    expect(drift.rows).toEqual([]);
  });
});
