import * as OTPAuth from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rateTierOf } from '../../gateway/src/routes';
import { createManaAuthClient } from '../../auth-svc/src/client';
import { call, cookieFetch } from '../helpers/http';
import { STACK_SERVICE_KEY, startStack, type Stack } from '../helpers/stack';
import { login, registerVerified, uniqueEmail, type TokenPair } from '../helpers/users';

const MAX_ATTEMPTS = 3;
const WRONG = 'Not The Password 42';
const VAULT = '/api/v1/me/encryption-vault';

/** The session id (`sid`) of an access token. */
const sidOf = (token: string): string => {
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sid: string };
  return payload.sid;
};

describe('step-up authentication (POST /api/v1/auth/reauth, the session auth-time API, requireRecentAuth)', () => {
  let s: Stack;
  const v1 = (path: string) => `${s.gatewayUrl}/api/v1/auth${path}`;
  const reauth = (token: string, body: unknown) => call<{ reauthenticatedAt?: string; error?: string }>(v1('/reauth'), { body, token });
  const authTime = (sid: string, key = STACK_SERVICE_KEY) =>
    call<{ sessionId: string; userId: string; authenticatedAt: string; error?: string }>(
      `${s.gatewayUrl}/api/v1/internal/sessions/${sid}/auth-time`,
      {
        headers: key ? { 'x-service-key': key } : {},
      },
    );
  const rotate = (token: string) =>
    call<{ masterKey?: string; error?: string }>(`${s.gatewayUrl}${VAULT}/rotate`, { method: 'POST', token });
  /** Moves the session's sign-in and re-authentication into the past (no sleeping). */
  const age = async (sid: string, seconds: number) => {
    await s.sql.query(`update auth.session set created_at = created_at - make_interval(secs => $2) where id = $1`, [sid, seconds]);
    await s.sql.query(
      `update auth.session_reauth set reauthenticated_at = reauthenticated_at - make_interval(secs => $2) where session_id = $1`,
      [sid, seconds],
    );
  };
  const failures = async (email: string) =>
    (await s.sql.query<{ failures: number }>('select failures from auth.sign_in_lockouts where email = $1', [email])).rows[0]?.failures ??
    0;

  beforeAll(async () => {
    s = await startStack({
      services: ['vault'],
      env: {
        REAUTH_MAX_AGE_SECONDS: '60',
        LOCKOUT_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        LOCKOUT_WINDOW_MINUTES: '15',
        LOCKOUT_DURATION_MINUTES: '30',
      },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a fresh sign-in passes; an old one gets 401 REAUTH_REQUIRED until the password is confirmed again', async () => {
    const user = await registerVerified(s);
    const pair = await login(s, user.email, user.password);
    const sid = sidOf(pair.accessToken);
    const created = (await s.sql.query<{ created_at: Date }>('select created_at from auth.session where id = $1', [sid])).rows[0]
      ?.created_at;

    // The sign-in is the session's first authentication.
    const first = await authTime(sid);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ sessionId: sid, userId: user.userId, authenticatedAt: created?.toISOString() });
    expect((await call(`${s.gatewayUrl}${VAULT}/init`, { method: 'POST', token: pair.accessToken })).status).toBe(200);
    expect((await rotate(pair.accessToken)).status).toBe(200);

    await age(sid, 61);
    const refused = await rotate(pair.accessToken);
    expect(refused).toMatchObject({ status: 401, body: { error: 'REAUTH_REQUIRED' } });

    const done = await reauth(pair.accessToken, { password: user.password });
    expect(done.status).toBe(200);
    const row = await s.sql.query<{ reauthenticated_at: Date }>(
      'select reauthenticated_at from auth.session_reauth where session_id = $1',
      [sid],
    );
    expect(done.body.reauthenticatedAt).toBe(row.rows[0]?.reauthenticated_at.toISOString());
    expect((await authTime(sid)).body.authenticatedAt).toBe(done.body.reauthenticatedAt);
    expect((await rotate(pair.accessToken)).status).toBe(200);
    const events = await s.sql.query<{ context: Record<string, unknown> }>(
      `select context from auth.security_events where user_id = $1 and type = 'reauthenticated'`,
      [user.userId],
    );
    expect(events.rows.map((r) => r.context)).toEqual([{ sessionId: sid, method: 'password' }]);

    // The re-authentication ages like a sign-in.
    await age(sid, 61);
    expect((await rotate(pair.accessToken)).body.error).toBe('REAUTH_REQUIRED');
    // Another session of the same user is not re-authenticated by this one.
    const other = await login(s, user.email, user.password);
    await age(sidOf(other.accessToken), 61);
    expect((await reauth(pair.accessToken, { password: user.password })).status).toBe(200);
    expect((await rotate(other.accessToken)).body.error).toBe('REAUTH_REQUIRED');
  });

  it('validates the body and needs a live session; the auth-time API needs the service key and a live session', async () => {
    const user = await registerVerified(s);
    const pair = await login(s, user.email, user.password);
    expect((await call(v1('/reauth'), { body: { password: user.password } })).status).toBe(401);
    const bad = await reauth(pair.accessToken, {});
    expect(bad).toMatchObject({ status: 400, body: { error: 'VALIDATION_FAILED' } });
    expect((await reauth(pair.accessToken, { password: user.password, code: '123456' })).status).toBe(400);
    // A code needs two-factor on.
    expect(await reauth(pair.accessToken, { code: '123456' })).toMatchObject({ status: 400, body: { error: 'TWO_FACTOR_NOT_ENABLED' } });

    const sid = sidOf(pair.accessToken);
    expect((await authTime(sid, '')).status).toBe(401);
    expect((await authTime(sid, 'x'.repeat(40))).status).toBe(403);
    expect(await authTime('no-such-session')).toMatchObject({ status: 404, body: { error: 'SESSION_NOT_FOUND' } });
    expect((await call(v1('/logout'), { method: 'POST', token: pair.accessToken, body: {} })).status).toBeLessThan(300);
    expect((await authTime(sid)).status).toBe(404);
    expect((await reauth(pair.accessToken, { password: user.password })).status).toBe(401);
  });

  it('a wrong password answers 401 REAUTH_FAILED and counts toward the sign-in lockout; a locked account is refused even with the right one', async () => {
    expect(rateTierOf('/api/v1/auth/reauth')).toBe('auth');
    const user = await registerVerified(s);
    const pair = await login(s, user.email, user.password);
    expect(await reauth(pair.accessToken, { password: WRONG })).toMatchObject({ status: 401, body: { error: 'REAUTH_FAILED' } });
    expect(await failures(user.email)).toBe(1);
    for (let i = 1; i < MAX_ATTEMPTS; i++) expect((await reauth(pair.accessToken, { password: WRONG })).status).toBe(401);
    await s.smtp.waitFor(user.email, (m) => m.subject === 'Your Mana account is temporarily locked');
    expect(await reauth(pair.accessToken, { password: user.password })).toMatchObject({ status: 401, body: { error: 'REAUTH_FAILED' } });
    expect((await call(v1('/login'), { body: { email: user.email, password: user.password } })).body).toMatchObject({
      error: 'INVALID_CREDENTIALS',
    });
    const locked = await s.sql.query<{ context: Record<string, unknown> }>(
      `select context from auth.security_events where user_id = $1 and type = 'sign_in_failure'`,
      [user.userId],
    );
    expect(locked.rows.map((r) => r.context)).toContainEqual({ reason: 'locked', method: 'password_recheck' });
    expect((await s.sql.query(`select 1 from auth.session_reauth where session_id = $1`, [sidOf(pair.accessToken)])).rowCount).toBe(0);
  });

  it('with two-factor on, a TOTP or backup code re-authenticates; wrong codes count toward the lockout; a backup code works once', async () => {
    const user = await registerVerified(s);
    const first = await login(s, user.email, user.password);
    const enabled = await call<{ totpURI: string; backupCodes: string[] }>(v1('/2fa/enable'), {
      body: { password: user.password },
      token: first.accessToken,
    });
    const totp = OTPAuth.URI.parse(enabled.body.totpURI) as OTPAuth.TOTP;
    // Distinct codes of the three periods the server accepts (the previous, the current, the next).
    const code = (step: -1 | 0 | 1) => totp.generate({ timestamp: Date.now() + step * 30_000 });
    const verified = await call<{ tokens: TokenPair }>(v1('/2fa/verify'), { body: { code: code(-1) }, token: first.accessToken });
    expect(verified.status).toBe(200);
    const token = verified.body.tokens.accessToken;
    const sid = sidOf(token);
    await age(sid, 61);

    const now = await reauth(token, { code: code(0) });
    expect(now.status).toBe(200);
    expect((await rotate(token)).status).toBe(404); // past the step-up check: this user has no vault
    const bad = code(0) === '000000' ? '111111' : '000000';
    expect(await reauth(token, { code: bad })).toMatchObject({ status: 401, body: { error: 'REAUTH_FAILED' } });
    expect(await failures(user.email)).toBe(1);

    await age(sid, 61);
    const backup = enabled.body.backupCodes[0] ?? '';
    expect((await reauth(token, { code: backup })).status).toBe(200);
    expect((await rotate(token)).body.error).toBe('VAULT_NOT_FOUND');
    expect(await reauth(token, { code: backup })).toMatchObject({ status: 401, body: { error: 'REAUTH_FAILED' } });
    expect(await failures(user.email)).toBe(2);
    // The password still works for an account with two-factor on.
    expect((await reauth(token, { password: user.password })).status).toBe(200);
    const methods = await s.sql.query<{ m: string }>(
      `select context->>'method' as m from auth.security_events where user_id = $1 and type = 'reauthenticated' order by created_at`,
      [user.userId],
    );
    expect(methods.rows.map((r) => r.m)).toEqual(['totp', 'backup_code', 'password']);
  });
  it("turning two-factor off needs a recent authentication, on /api/v1 (password or code) and on Better Auth's endpoint", async () => {
    const user = await registerVerified(s);
    const first = await login(s, user.email, user.password);
    const enabled = await call<{ totpURI: string; backupCodes: string[] }>(v1('/2fa/enable'), {
      body: { password: user.password },
      token: first.accessToken,
    });
    const totp = OTPAuth.URI.parse(enabled.body.totpURI) as OTPAuth.TOTP;
    const verified = await call<{ tokens: TokenPair }>(v1('/2fa/verify'), { body: { code: totp.generate() }, token: first.accessToken });
    const token = verified.body.tokens.accessToken;
    await age(sidOf(token), 61);
    expect(await call(v1('/2fa/disable'), { body: { password: user.password }, token })).toMatchObject({
      status: 401,
      body: { error: 'REAUTH_REQUIRED' },
    });
    expect(await call(v1('/2fa/disable'), { body: { code: enabled.body.backupCodes[0] }, token })).toMatchObject({
      status: 401,
      body: { error: 'REAUTH_REQUIRED' },
    });
    expect(
      (await s.sql.query<{ two_factor_enabled: boolean }>('select two_factor_enabled from auth."user" where id = $1', [user.userId]))
        .rows[0]?.two_factor_enabled,
    ).toBe(true);

    // A browser session (cookie) that signed in long ago is refused by Better Auth's endpoint too.
    const jar = cookieFetch(s.gatewayUrl);
    const c = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: jar.fetch });
    await c.signIn.email({ email: user.email, password: user.password });
    expect((await c.twoFactor.verifyTotp({ code: totp.generate({ timestamp: Date.now() + 30_000 }) })).error).toBeNull();
    const cookieSession = await s.sql.query<{ id: string }>(
      'select id from auth.session where user_id = $1 order by created_at desc limit 1',
      [user.userId],
    );
    await age(cookieSession.rows[0]?.id ?? '', 61);
    expect((await c.twoFactor.disable({ password: user.password })).error).toMatchObject({ status: 401, code: 'REAUTH_REQUIRED' });

    expect((await reauth(token, { password: user.password })).status).toBe(200);
    expect(await call(v1('/2fa/disable'), { body: { password: user.password }, token })).toMatchObject({
      status: 200,
      body: { status: true },
    });
  });

  it('changing the email address needs a recent authentication (a fresh sign-in is one)', async () => {
    const user = await registerVerified(s);
    const jar = cookieFetch(s.gatewayUrl);
    const c = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: jar.fetch });
    await c.signIn.email({ email: user.email, password: user.password });
    const sessions = await s.sql.query<{ id: string }>('select id from auth.session where user_id = $1', [user.userId]);
    await age(sessions.rows[0]?.id ?? '', 61);
    expect((await c.changeEmail({ newEmail: uniqueEmail('moved') })).error).toMatchObject({ status: 401, code: 'REAUTH_REQUIRED' });
    const types = await s.sql.query(`select type from auth.security_events where user_id = $1 and type = 'email_change_requested'`, [
      user.userId,
    ]);
    expect(types.rowCount).toBe(0);

    const fresh = cookieFetch(s.gatewayUrl);
    const f = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: fresh.fetch });
    await f.signIn.email({ email: user.email, password: user.password });
    expect((await f.changeEmail({ newEmail: uniqueEmail('moved') })).error).toBeNull();
  });
  it("every password re-check inside a session counts toward the sign-in lockout (and is in the gateway's auth tier)", async () => {
    for (const path of [
      '/api/v1/auth/2fa/enable',
      '/api/v1/auth/2fa/disable',
      '/api/v1/auth/2fa/backup-codes',
      '/api/auth/change-password',
      '/api/auth/two-factor/disable',
    ])
      expect([path, rateTierOf(path)]).toEqual([path, 'auth']);
    const user = await registerVerified(s);
    const pair = await login(s, user.email, user.password);
    const jar = cookieFetch(s.gatewayUrl);
    const c = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: jar.fetch });
    await c.signIn.email({ email: user.email, password: user.password });
    expect((await call(v1('/2fa/enable'), { body: { password: WRONG }, token: pair.accessToken })).status).toBe(400);
    expect(await failures(user.email)).toBe(1);
    expect((await c.changePassword({ currentPassword: WRONG, newPassword: `${user.password}!` })).error?.status).toBe(400);
    expect(await failures(user.email)).toBe(2);
    expect((await call(v1('/2fa/enable'), { body: { password: WRONG }, token: pair.accessToken })).status).toBe(400);
    await s.smtp.waitFor(user.email, (m) => m.subject === 'Your Mana account is temporarily locked');
    // Locked: the right password is refused like a wrong one, on the re-check and at sign-in.
    expect(await call(v1('/2fa/enable'), { body: { password: user.password }, token: pair.accessToken })).toMatchObject({
      status: 400,
      body: { error: 'INVALID_PASSWORD' },
    });
    expect((await c.changePassword({ currentPassword: user.password, newPassword: `${user.password}!` })).error?.status).toBe(400);
    expect((await call(v1('/login'), { body: { email: user.email, password: user.password } })).body).toMatchObject({
      error: 'INVALID_CREDENTIALS',
    });
    expect((await s.sql.query('select 1 from auth.two_factor where user_id = $1', [user.userId])).rowCount).toBe(0);
  });
  it('a completed email change ends the other sessions (the confirming browser keeps its own)', async () => {
    const user = await registerVerified(s);
    const bearer = await login(s, user.email, user.password);
    const jar = cookieFetch(s.gatewayUrl);
    const c = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: jar.fetch });
    await c.signIn.email({ email: user.email, password: user.password });
    const newEmail = uniqueEmail('moved');
    expect((await c.changeEmail({ newEmail })).error).toBeNull();
    const approve = await s.smtp.waitFor(user.email, (m) => m.subject === 'Confirm the change of your email address');
    expect((await jar.fetch(s.smtp.linkIn(approve), { redirect: 'manual' })).status).toBeLessThan(400);
    // Approving from the old address changes nothing yet.
    expect((await call(v1('/session'), { token: bearer.accessToken })).status).toBe(200);
    const confirm = await s.smtp.waitFor(newEmail, (m) => m.subject === 'Confirm your new email address');
    expect((await jar.fetch(s.smtp.linkIn(confirm), { redirect: 'manual' })).status).toBeLessThan(400);
    await s.waitForEvent('session.revoked.v1', (e) => e.type === 'session.revoked.v1' && e.data.sessionId === sidOf(bearer.accessToken));
    expect((await call(v1('/session'), { token: bearer.accessToken })).status).toBe(401);
    const left = await s.sql.query<{ id: string }>('select id from auth.session where user_id = $1', [user.userId]);
    expect(left.rowCount).toBe(1);
    expect((await c.getSession()).data?.user.email).toBe(newEmail);
  });
});
