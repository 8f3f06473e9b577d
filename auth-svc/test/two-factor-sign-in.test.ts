import * as OTPAuth from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, lockWaiters as lockWaitersOf, uniqueName } from '@mana/shared/testing';
import { startTestAuthService, type TestAuthService } from './helpers/service';

/**
 * The second step of a two-factor sign-in: the pending sign-in it completes was made by a password check, so a
 * password reset in between refuses it (drizzle/0017, plugins/password-version.ts), and a challenge completes once.
 * Interleavings are forced with a lock or an open transaction of a second connection, their waits read from
 * pg_stat_activity.
 */
describe('auth-svc: completing a two-factor sign-in', () => {
  let svc: TestAuthService['svc'];
  let sql: TestAuthService['sql'];
  let stop: TestAuthService['stop'] | undefined;
  const origin = 'http://127.0.0.1:3001';
  const baseHeaders = { 'content-type': 'application/json', 'user-agent': 'two-factor-sign-in/1.0', origin };
  const post = (path: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    fetch(`${svc.url}${path}`, { method: 'POST', headers: { ...baseHeaders, ...headers }, body: JSON.stringify(body) });
  const json = async (res: Response) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> });
  const password = 'Two Factor Old Password 3';
  const newPassword = 'Two Factor New Password 4';

  beforeAll(async () => {
    ({ svc, sql, stop } = await startTestAuthService('2fasign'));
  });

  afterAll(async () => {
    await stop?.();
  });

  /** A user with TOTP on (enabled with the password, confirmed with a code); its backup codes. */
  const twoFactorUser = async () => {
    const email = `${uniqueName('twofa')}@example.com`;
    const registered = await json(await post('/api/v1/auth/register', { email, password }));
    expect(registered.status).toBe(201);
    const userId = (registered.body.user as { id: string }).id;
    const { body: login } = await json(await post('/api/v1/auth/login', { email, password }));
    const bearer = { authorization: `Bearer ${login.accessToken as string}` };
    const enabled = await json(await post('/api/v1/auth/2fa/enable', { password }, bearer));
    expect(enabled.status).toBe(200);
    const totp = OTPAuth.URI.parse(enabled.body.totpURI as string) as OTPAuth.TOTP;
    expect((await post('/api/v1/auth/2fa/verify', { code: totp.generate() }, bearer)).status).toBe(200);
    return { email, userId, backupCodes: enabled.body.backupCodes as string[] };
  };
  /** Step 1 on /api/v1: the password is right, the answer is a challenge. */
  const startLogin = async (email: string) => {
    const { status, body } = await json(await post('/api/v1/auth/login', { email, password }));
    expect({ status, twoFactorRequired: body.twoFactorRequired }).toEqual({ status: 200, twoFactorRequired: true });
    return body.challenge as string;
  };
  const complete = async (challenge: string, code: string) => json(await post('/api/v1/auth/login/2fa', { challenge, code }));
  const sessionsOf = async (userId: string) =>
    (await sql.query<{ id: string }>('select id from auth.session where user_id = $1', [userId])).rows.map((r) => r.id);
  const lockWaiters = (pattern: string) => lockWaitersOf(sql, pattern);
  /** Better Auth's own reset: request a token (read from its table instead of the mail), then set the new password. */
  const resetPassword = async (email: string) => {
    expect((await post('/api/auth/request-password-reset', { email, redirectTo: `${origin}/reset` })).status).toBe(200);
    const { rows } = await sql.query<{ identifier: string }>(
      `select identifier from auth.verification where identifier like 'reset-password:%' order by created_at desc limit 1`,
    );
    const token = rows[0]?.identifier.slice('reset-password:'.length);
    expect(token).toBeTruthy();
    expect((await post('/api/auth/reset-password', { token, newPassword })).status).toBe(200);
  };

  it('a password reset between the password and the code refuses the code on /api/v1 (401 INVALID_CHALLENGE), no session, the backup code kept', async () => {
    const { email, userId, backupCodes } = await twoFactorUser();
    const challenge = await startLogin(email);
    await resetPassword(email);
    expect(await complete(challenge, backupCodes[0] ?? '')).toMatchObject({ status: 401, body: { error: 'INVALID_CHALLENGE' } });
    expect(await sessionsOf(userId)).toEqual([]);
    // The refused step did not use the backup code up: it completes a sign-in with the new password.
    const { body } = await json(await post('/api/v1/auth/login', { email, password: newPassword }));
    expect(await complete(body.challenge as string, backupCodes[0] ?? '')).toMatchObject({ status: 200 });
  });

  it("a password reset between the password and the code refuses Better Auth's own second step (401), no session", async () => {
    const { email, userId, backupCodes } = await twoFactorUser();
    const signIn = await post('/api/auth/sign-in/email', { email, password });
    expect(await signIn.json()).toMatchObject({ twoFactorRedirect: true });
    const cookie = signIn.headers
      .getSetCookie()
      .map((c) => c.split(';')[0] ?? '')
      .find((c) => c.startsWith('mana.two_factor='));
    expect(cookie).toBeTruthy();
    await resetPassword(email);
    const refused = await json(await post('/api/auth/two-factor/verify-backup-code', { code: backupCodes[0] }, { cookie: cookie ?? '' }));
    expect(refused).toMatchObject({ status: 401, body: { code: 'INVALID_TWO_FACTOR_COOKIE' } });
    expect(await sessionsOf(userId)).toEqual([]);
  });

  it('a reset that commits while the second step waits to insert its session refuses it, no session', async () => {
    const { email, userId, backupCodes } = await twoFactorUser();
    const challenge = await startLogin(email);
    const holder = await sql.connect();
    let pending: ReturnType<typeof complete> | undefined;
    try {
      await holder.query('begin');
      // Holds the second step after its code was checked, at its session insert (whose trigger takes this row).
      await holder.query('select id from auth."user" where id = $1 for update', [userId]);
      pending = complete(challenge, backupCodes[0] ?? '');
      await eventually(async () => (await lockWaiters('insert into %session%')) > 0);
      await resetPassword(email);
    } finally {
      await holder.query('rollback').catch(() => {});
      holder.release();
    }
    expect(await pending).toMatchObject({ status: 401, body: { error: 'INVALID_CHALLENGE' } });
    expect(await sessionsOf(userId)).toEqual([]);
  });

  it('a second step without a reset signs in, with the version of the password step 1 checked', async () => {
    const { email, userId, backupCodes } = await twoFactorUser();
    await sql.query('delete from auth.session where user_id = $1', [userId]);
    const done = await complete(await startLogin(email), backupCodes[0] ?? '');
    expect(done).toMatchObject({ status: 200, body: { tokenType: 'Bearer' } });
    const { rows } = await sql.query('select password_version from auth.session where user_id = $1', [userId]);
    expect(rows).toEqual([{ password_version: 0 }]);
  });

  it('two completions of one challenge at once: one gets the tokens, the other INVALID_CHALLENGE, one session', async () => {
    const { email, userId, backupCodes } = await twoFactorUser();
    await sql.query('delete from auth.session where user_id = $1', [userId]);
    const challenge = await startLogin(email);
    const holder = await sql.connect();
    let both: Promise<Awaited<ReturnType<typeof complete>>[]> | undefined;
    try {
      await holder.query('begin');
      // Both completions opened the challenge and wait in Better Auth's verification for their lockout charge
      // (this row), before either code is checked; then they run on together.
      await holder.query(
        `insert into auth.sign_in_lockouts (email, failures) values ($1, 0)
           on conflict (email) do update set failures = auth.sign_in_lockouts.failures`,
        [email],
      );
      both = Promise.all([complete(challenge, backupCodes[0] ?? ''), complete(challenge, backupCodes[1] ?? '')]);
      await eventually(async () => (await lockWaiters('insert into %sign_in_lockouts%')) === 2);
      await holder.query('commit');
    } finally {
      await holder.query('rollback').catch(() => {});
      holder.release();
    }
    const answers = (await both) ?? [];
    expect(answers.map((a) => a.status).sort()).toEqual([200, 401]);
    expect(answers.find((a) => a.status === 401)?.body.error).toBe('INVALID_CHALLENGE');
    expect(await sessionsOf(userId)).toHaveLength(1);
  });
});
