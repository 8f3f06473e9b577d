import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, lockWaiters } from '@mana/shared/testing';
import { applySessionPolicy } from '../src/domain/sessions';
import { startTestAuthService, type TestAuthService } from './helpers/service';

/**
 * A sign-in racing a start that lowers SESSION_MAX_LIFETIME_SECONDS gets the new lifetime. The sign-in's session
 * insert is held after its cap trigger read the old lifetime (the test locks the user row its ban trigger takes
 * next), while the real applySessionPolicy lowers the lifetime: no sleeps, the waits are read from pg_stat_activity.
 */
describe('auth-svc: a sign-in racing a lower session lifetime', () => {
  let svc: TestAuthService['svc'];
  let sql: TestAuthService['sql'];
  let database: TestAuthService['database'];
  let stop: TestAuthService['stop'] | undefined;
  const headers = { 'content-type': 'application/json', 'user-agent': 'policy-race/1.0' };
  const post = (path: string, body: Record<string, unknown>) =>
    fetch(`${svc.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const email = 'policy-race@example.com';
  const password = 'Policy Race Passphrase 7';
  const waiting = async (pattern: string) => (await lockWaiters(sql, pattern)) > 0;

  beforeAll(async () => {
    ({ svc, sql, database, stop } = await startTestAuthService('policy'));
    expect((await post('/api/v1/auth/register', { email, password })).status).toBe(201);
  });

  afterAll(async () => {
    await stop?.();
  });

  it('a session inserted while the lower lifetime is being applied gets the lower lifetime', async () => {
    const holder = await sql.connect();
    let signIn: Promise<Response> | undefined;
    let lowering: Promise<unknown> | undefined;
    try {
      await holder.query('begin');
      await holder.query('select 1 from auth."user" where email = $1 for update', [email]);
      signIn = post('/api/v1/auth/login', { email, password });
      // The insert's cap trigger has read the 7-day lifetime; its ban trigger waits for the user row.
      await eventually(() => waiting('insert into %session%'));
      lowering = applySessionPolicy(database.db, 3600);
      // The lower lifetime is committed and the cap waits for the session writes in flight (it polls pg_locks for
      // the insert's transaction): on the old code it had capped already, without the session held here.
      await eventually(async () => {
        const { rows } = await sql.query<{ n: number }>(
          // The pattern is split so that this query's own text (an idle pool connection shows its last one) does not match.
          `select count(*)::int as n from pg_stat_activity
            where datname = current_database() and query like '%virtualxid = ' || 'any(%'`,
        );
        return rows[0]?.n;
      });
      await holder.query('commit');
    } finally {
      await holder.query('rollback').catch(() => {});
      holder.release();
    }
    await lowering;
    expect((await signIn).status).toBe(200);
    const { rows } = await sql.query<{ capped: boolean; sessions: number }>(
      `select bool_and(expires_at <= created_at + interval '3600 seconds') as capped, count(*)::int as sessions from auth.session`,
    );
    expect(rows[0]).toEqual({ capped: true, sessions: 1 });
  });

  it('a cap owed by a start that died before it finished is paid by the next start, with the same lifetime', async () => {
    expect((await post('/api/v1/auth/login', { email, password })).status).toBe(200);
    // A start that stored a lower lifetime and died before its cap: a session left past it, the cap still owed.
    await sql.query(`update auth.session_policy set max_lifetime_seconds = 1800, sessions_capped = false where id`);
    const c = await sql.connect();
    try {
      // Past the cap trigger (as a session written before the lower lifetime was stored).
      await c.query('begin');
      await c.query(`set local session_replication_role = replica`);
      await c.query(`update auth.session set created_at = now() - interval '1 hour', expires_at = now() + interval '6 days'`);
      await c.query('commit');
    } finally {
      c.release();
    }
    expect(
      (await sql.query(`select 1 from auth.session where expires_at > created_at + interval '1800 seconds'`)).rowCount,
    ).toBeGreaterThan(0);
    await applySessionPolicy(database.db, 1800);
    const { rows } = await sql.query<{ capped: boolean; owed: boolean }>(
      `select bool_and(expires_at <= created_at + interval '1800 seconds') as capped,
              (select not sessions_capped from auth.session_policy where id) as owed
         from auth.session`,
    );
    expect(rows[0]).toEqual({ capped: true, owed: false });
  });

  it('a batch that meets a row lock gives way instead of waiting (no deadlock with a DELETE of sessions); the cap stays owed', async () => {
    expect((await post('/api/v1/auth/login', { email, password })).status).toBe(200);
    await sql.query(`update auth.session_policy set max_lifetime_seconds = 7200, sessions_capped = true where id`);
    const c = await sql.connect();
    try {
      await c.query('begin');
      await c.query(`set local session_replication_role = replica`);
      await c.query(`update auth.session set created_at = now() - interval '3 hours', expires_at = now() + interval '6 days'`);
      await c.query('commit');
      // A transaction holds the rows, as a ban's DELETE of the user's sessions would.
      await c.query('begin');
      await c.query('select 1 from auth.session for update');
      expect(await applySessionPolicy(database.db, 900)).toBe('owed');
      await c.query('commit');
    } finally {
      await c.query('rollback').catch(() => {});
      c.release();
    }
    const owed = await sql.query<{ owed: boolean }>(`select not sessions_capped as owed from auth.session_policy where id`);
    expect(owed.rows[0]?.owed).toBe(true);
    expect(await applySessionPolicy(database.db, 900)).toBe('capped');
    const { rows } = await sql.query<{ capped: boolean }>(
      `select bool_and(expires_at <= created_at + interval '900 seconds') as capped from auth.session`,
    );
    expect(rows[0]?.capped).toBe(true);
  });
});
