import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { eventually, lockWaiters, uniqueName } from '@mana/shared/testing';
import { hashPassword } from '../src/auth/password-hash';
import { startTestAuthService, type TestAuthService } from './helpers/service';

/**
 * A sign-in with the old password racing a password reset keeps no session, whichever commits first (drizzle/0016,
 * plugins/password-version.ts). Each interleaving is forced with a lock or an open transaction of a second
 * connection, never a sleep: the sign-in has read and verified the old hash before the reset commits.
 */
describe('auth-svc: a sign-in with the old password racing a password change', () => {
  let svc: TestAuthService['svc'];
  let sql: TestAuthService['sql'];
  let stop: TestAuthService['stop'] | undefined;
  const headers = { 'content-type': 'application/json', 'user-agent': 'password-race/1.0', origin: 'http://127.0.0.1:3001' };
  const post = (path: string, body: Record<string, unknown>) =>
    fetch(`${svc.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const oldPassword = 'Old Password Known To Attacker 1';
  const newPassword = 'Brand New Password After Reset 2';

  beforeAll(async () => {
    ({ svc, sql, stop } = await startTestAuthService('pwrace'));
  });

  afterAll(async () => {
    await stop?.();
  });

  const register = async () => {
    const email = `${uniqueName('race')}@example.com`;
    const res = await post('/api/v1/auth/register', { email, password: oldPassword });
    expect(res.status).toBe(201);
    const { user } = (await res.json()) as { user: { id: string } };
    return { email, userId: user.id };
  };
  const login = async (email: string, password: string) => {
    const res = await post('/api/v1/auth/login', { email, password });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  /** What a wrong password gets (no enumeration: an outdated one must look the same). */
  const wrongPassword = async (email: string) => {
    const { status, body } = await login(email, 'Not The Password At All 0');
    return { status, body: { error: body.error, message: body.message } };
  };
  /** A password change's write, as Better Auth's updatePassword makes it. */
  const writeNewHash = async (conn: pg.PoolClient, userId: string) =>
    conn.query(`update auth.account set password = $2 where user_id = $1 and provider_id = 'credential'`, [
      userId,
      await hashPassword(newPassword),
    ]);
  const sessionsOf = async (userId: string) =>
    (await sql.query<{ id: string }>('select id from auth.session where user_id = $1', [userId])).rows.map((r) => r.id);
  /** The sign-in has checked the password and its session INSERT waits on a row lock. */
  const sessionInsertWaits = () => eventually(async () => (await lockWaiters(sql, 'insert into %session%')) > 0);
  /** Better Auth's own reset: request a token (read from its table instead of the mail), then set the new password. */
  const resetPassword = async (email: string) => {
    expect((await post('/api/auth/request-password-reset', { email, redirectTo: 'http://127.0.0.1:3001/reset' })).status).toBe(200);
    const { rows } = await sql.query<{ identifier: string }>(
      `select identifier from auth.verification where identifier like 'reset-password:%' order by created_at desc limit 1`,
    );
    const token = rows[0]?.identifier.slice('reset-password:'.length);
    expect(token).toBeTruthy();
    const res = await post('/api/auth/reset-password', { token, newPassword });
    expect(res.status).toBe(200);
  };

  it('a reset that commits while the sign-in waits to insert its session refuses the sign-in like a wrong password', async () => {
    const { email, userId } = await register();
    const holder = await sql.connect();
    let pending: ReturnType<typeof login> | undefined;
    try {
      await holder.query('begin');
      // Holds the sign-in between its password check and its session insert (the insert's trigger takes this row).
      await holder.query('select id from auth."user" where id = $1 for update', [userId]);
      pending = login(email, oldPassword);
      await sessionInsertWaits();
      await resetPassword(email);
    } finally {
      await holder.query('rollback').catch(() => {});
      holder.release();
    }
    const refused = await pending;
    expect(refused).toMatchObject({ status: 401, body: { error: 'INVALID_CREDENTIALS' } });
    expect(refused).toMatchObject(await wrongPassword(email));
    expect(await sessionsOf(userId)).toEqual([]);
    expect((await login(email, newPassword)).status).toBe(200);
  });

  it("a sign-in whose session commits between the reset's session delete and its password update loses it", async () => {
    const { email, userId } = await register();
    const reset = await sql.connect();
    try {
      // Better Auth's reset order (resetCredentialPassword): the sessions end first, then the hash is written.
      await reset.query('begin');
      await reset.query('delete from auth.session where user_id = $1', [userId]);
      const signedIn = await login(email, oldPassword);
      expect(signedIn.status).toBe(200);
      expect(await sessionsOf(userId)).toHaveLength(1);
      await writeNewHash(reset, userId);
      await reset.query('commit');
    } finally {
      await reset.query('rollback').catch(() => {});
      reset.release();
    }
    expect(await sessionsOf(userId)).toEqual([]);
  });

  it('a sign-in that read the old hash while the new one was being written waits for it and is refused', async () => {
    const { email, userId } = await register();
    const change = await sql.connect();
    let pending: ReturnType<typeof login> | undefined;
    try {
      await change.query('begin');
      await writeNewHash(change, userId);
      // Not committed: the sign-in reads the old hash, verifies it, and its insert waits for this transaction.
      pending = login(email, oldPassword);
      await sessionInsertWaits();
      await change.query('commit');
    } finally {
      await change.query('rollback').catch(() => {});
      change.release();
    }
    expect(await pending).toMatchObject(await wrongPassword(email));
    expect(await sessionsOf(userId)).toEqual([]);
  });

  it('a password sign-in without a race records the version of the password it checked', async () => {
    const { email, userId } = await register();
    expect((await login(email, oldPassword)).status).toBe(200);
    const { rows } = await sql.query<{ password_version: number | null }>('select password_version from auth.session where user_id = $1', [
      userId,
    ]);
    expect(rows).toEqual([{ password_version: 0 }]);
  });

  it("the version is never in an answer: Better Auth's session and account views leave it out", async () => {
    const { email } = await register();
    const signIn = await post('/api/auth/sign-in/email', { email, password: oldPassword });
    expect(signIn.status).toBe(200);
    const cookie = signIn.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    for (const path of ['/api/auth/get-session', '/api/auth/list-sessions', '/api/auth/list-accounts']) {
      const res = await fetch(`${svc.url}${path}`, { headers: { ...headers, cookie } });
      expect(res.status, path).toBe(200);
      const text = await res.text();
      expect(text, path).not.toMatch(/passwordVersion|password_version/);
    }
  });
});
