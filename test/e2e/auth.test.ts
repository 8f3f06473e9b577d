import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { createManaAuthClient } from '../../auth-svc/src/client';
import { call, cookieFetch } from '../helpers/http';
import { STACK_SERVICE_KEY, startStack, type Stack } from '../helpers/stack';
import { follow, login, registerVerified, strongPassword, uniqueEmail, type TokenPair } from '../helpers/users';

const CLAIMS = ['aud', 'email', 'exp', 'iat', 'iss', 'role', 'sid', 'sub'];

describe('auth-svc through the gateway (two auth-svc instances)', () => {
  let s: Stack;
  const v1 = (path: string) => `${s.gatewayUrl}/api/v1/auth${path}`;
  const sessionStatus = async (token: string) => (await call(v1('/session'), { token })).status;

  beforeAll(async () => {
    s = await startStack({ authInstances: 2 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('sign-up → verification mail → link → login → an EdDSA JWT that verifies against the JWKS', async () => {
    const jar = cookieFetch(s.gatewayUrl);
    const client = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: jar.fetch });
    const email = uniqueEmail('signup');
    const password = strongPassword();
    const signUp = await client.signUp.email({ email, password, name: 'Ada Lovelace' });
    expect(signUp.error).toBeNull();

    // Unverified: both paths refuse with EMAIL_NOT_VERIFIED.
    const early = await call(v1('/login'), { body: { email, password } });
    expect(early.status).toBe(403);
    expect(early.body).toMatchObject({ error: 'EMAIL_NOT_VERIFIED', requestId: expect.any(String) });
    expect((await client.signIn.email({ email, password })).error?.status).toBe(403);

    const mail = await s.smtp.waitFor(email);
    expect(mail.subject).toBe('Confirm your email address');
    expect(mail.html).toContain('<a href="');
    const link = s.smtp.linkIn(mail);
    expect(link.startsWith(`${s.gatewayUrl}/api/auth/verify-email?token=`)).toBe(true);
    expect(await follow(link)).toBe(302);

    const res = await call<TokenPair>(v1('/login'), { body: { email, password, deviceName: 'Laptop' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      expiresIn: 900,
      tokenType: 'Bearer',
      user: { email, name: 'Ada Lovelace', role: 'user', emailVerified: true },
    });
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('mana.session_token='));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/);

    const { accessToken } = res.body;
    expect(decodeProtectedHeader(accessToken).alg).toBe('EdDSA');
    for (const path of ['/.well-known/jwks.json', '/api/auth/jwks']) {
      const jwks = createRemoteJWKSet(new URL(`${s.gatewayUrl}${path}`));
      const { payload } = await jwtVerify(accessToken, jwks, { algorithms: ['EdDSA'], issuer: s.gatewayUrl, audience: 'mana' });
      expect(Object.keys(payload).sort()).toEqual(CLAIMS);
      expect(payload).toMatchObject({ sub: res.body.user.id, email, role: 'user', sid: expect.any(String) });
      expect(Number(payload.exp) - Number(payload.iat)).toBe(900);
    }
    const keys = (await call<{ keys: Array<{ kty: string; crv: string; alg: string }> }>(`${s.gatewayUrl}/.well-known/jwks.json`)).body
      .keys;
    expect(keys.every((k) => k.kty === 'OKP' && k.crv === 'Ed25519' && k.alg === 'EdDSA')).toBe(true);

    // The bearer token works at the gateway; the session carries the device.
    const session = await call<{ session: { deviceName: string; current: boolean } }>(v1('/session'), { token: accessToken });
    expect(session.status).toBe(200);
    expect(session.body.session).toMatchObject({ deviceName: 'Laptop', current: true });

    // The native path: cookie session, then Better Auth's own /token mints the same claim set.
    const native = await client.signIn.email({ email, password });
    expect(native.error).toBeNull();
    expect(jar.cookies.has('mana.session_token')).toBe(true);
    const got = await client.getSession();
    expect(got.data?.user.email).toBe(email);
    const token = await call<{ token: string }>(`${s.gatewayUrl}/api/auth/token`, { fetch: jar.fetch });
    const { payload } = await jwtVerify(token.body.token, createRemoteJWKSet(new URL(`${s.gatewayUrl}/.well-known/jwks.json`)), {
      algorithms: ['EdDSA'],
      issuer: s.gatewayUrl,
      audience: 'mana',
    });
    expect(Object.keys(payload).sort()).toEqual(CLAIMS);
    expect(await sessionStatus(token.body.token)).toBe(200);

    // The registration reached the bus (credits initialise from it).
    const registered = await s.waitForEvent('user.registered.v1', (e) => (e.data as { email: string }).email === email);
    expect(registered.data).toMatchObject({ userId: res.body.user.id, name: 'Ada Lovelace' });
  });

  it('answers a wrong password and an unknown email identically', async () => {
    const { email } = await registerVerified(s);
    const wrong = await call(v1('/login'), { body: { email, password: 'Not The Password 42' } });
    const unknown = await call(v1('/login'), { body: { email: uniqueEmail('nobody'), password: 'Not The Password 42' } });
    const strip = (b: Record<string, unknown>) => ({ ...b, requestId: undefined });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(strip(wrong.body)).toEqual({ error: 'INVALID_CREDENTIALS', message: 'Invalid email or password', requestId: undefined });
    expect(strip(unknown.body)).toEqual(strip(wrong.body));
    // Better Auth's native path: the same status and body for both too.
    const nWrong = await call(`${s.gatewayUrl}/api/auth/sign-in/email`, { body: { email, password: 'Not The Password 42' } });
    const nUnknown = await call(`${s.gatewayUrl}/api/auth/sign-in/email`, { body: { email: uniqueEmail('nobody'), password: 'x' } });
    expect(nWrong.status).toBe(401);
    expect(nUnknown).toMatchObject({ status: nWrong.status, body: nWrong.body });
  });

  it('applies the password rules on both paths and names the failing rule', async () => {
    const cases: Array<[string, string]> = [
      ['short', 'PASSWORD_TOO_SHORT'],
      ['x'.repeat(129), 'PASSWORD_TOO_LONG'],
      ['password123', 'PASSWORD_TOO_COMMON'],
      ['Qwerty123', 'PASSWORD_TOO_COMMON'],
    ];
    for (const [password, code] of cases) {
      const email = uniqueEmail('rules');
      const v = await call(v1('/register'), { body: { email, password } });
      expect(v.status, `${code} on /api/v1/auth/register`).toBe(400);
      expect(v.body.error).toBe(code);
      const n = await call(`${s.gatewayUrl}/api/auth/sign-up/email`, { body: { email, password, name: 'N' } });
      expect(n.status, `${code} on /api/auth/sign-up/email`).toBe(400);
      expect(n.body.code).toBe(code);
      const rows = await s.sql.query('select 1 from auth."user" where email = $1', [email]);
      expect(rows.rowCount).toBe(0);
    }
    // No composition rules: a long passphrase of lower-case words and spaces is fine; 128 is the maximum.
    expect((await call(v1('/register'), { body: { email: uniqueEmail('phrase'), password: 'correct horse battery staple' } })).status).toBe(
      201,
    );
    expect((await call(v1('/register'), { body: { email: uniqueEmail('long'), password: 'ä'.repeat(128) } })).status).toBe(201);
  });

  it('rotates refresh tokens, lets concurrent refreshes through, and ends the session on reuse', async () => {
    const { email, password } = await registerVerified(s);
    const first = await login(s, email, password);
    const second = await call<TokenPair>(v1('/refresh'), { body: { refreshToken: first.refreshToken } });
    expect(second.status).toBe(200);
    expect(second.body.refreshToken).not.toBe(first.refreshToken);
    expect(await sessionStatus(second.body.accessToken)).toBe(200);

    // Two tabs refreshing with the same token at once: both succeed (grace window).
    const both = await Promise.all([1, 2].map(() => call<TokenPair>(v1('/refresh'), { body: { refreshToken: second.body.refreshToken } })));
    expect(both.map((r) => r.status)).toEqual([200, 200]);

    // Stored hashed only.
    const stored = await s.sql.query<{ n: number }>(
      'select count(*)::int as n from auth.refresh_tokens where token_hash = $1 or token_hash = $2',
      [first.refreshToken, second.body.refreshToken],
    );
    expect(stored.rows[0].n).toBe(0);

    // A spent token presented after the grace window: the whole session ends.
    await s.sql.query(`update auth.refresh_tokens set used_at = now() - interval '1 minute' where used_at is not null`);
    const reuse = await call(v1('/refresh'), { body: { refreshToken: first.refreshToken } });
    expect(reuse.status).toBe(401);
    expect(reuse.body.error).toBe('REFRESH_TOKEN_REUSED');
    const live = both[0]?.body.refreshToken ?? '';
    expect((await call(v1('/refresh'), { body: { refreshToken: live } })).body.error).toBe('INVALID_REFRESH_TOKEN');
    await eventually(async () => (await sessionStatus(second.body.accessToken)) === 401, 3_000);
    const events = await s.sql.query(`select type, context from auth.security_events where user_id = $1`, [first.user.id]);
    expect(events.rows.map((r: { type: string }) => r.type)).toContain('refresh_token_reuse');
    expect(JSON.stringify(events.rows)).not.toContain(first.refreshToken);
    // Garbage is simply invalid.
    expect((await call(v1('/refresh'), { body: { refreshToken: 'x'.repeat(43) } })).body.error).toBe('INVALID_REFRESH_TOKEN');
  });

  it('allows one concurrent double-submit of a refresh token, not a third exchange inside the grace window', async () => {
    const { email, password } = await registerVerified(s);
    const pair = await login(s, email, password);
    const a = await call<TokenPair>(v1('/refresh'), { body: { refreshToken: pair.refreshToken } });
    const b = await call<TokenPair>(v1('/refresh'), { body: { refreshToken: pair.refreshToken } });
    expect([a.status, b.status]).toEqual([200, 200]);
    // A third exchange of the same spent token, still within the window: a stolen copy, not a second tab.
    const c = await call(v1('/refresh'), { body: { refreshToken: pair.refreshToken } });
    expect(c.status).toBe(401);
    expect(c.body.error).toBe('REFRESH_TOKEN_REUSED');
    expect((await call(v1('/refresh'), { body: { refreshToken: b.body.refreshToken } })).body.error).toBe('INVALID_REFRESH_TOKEN');
    const events = await s.sql.query(`select type from auth.security_events where user_id = $1`, [pair.user.id]);
    const types = events.rows.map((r: { type: string }) => r.type);
    expect(types).toContain('refresh_token_grace_exchange');
    expect(types).toContain('refresh_token_reuse');
  });

  it('logout revokes the session: the same access token is refused at the gateway right after', async () => {
    const { email, password } = await registerVerified(s);
    const pair = await login(s, email, password);
    expect(await sessionStatus(pair.accessToken)).toBe(200);
    const out = await call(v1('/logout'), { method: 'POST', token: pair.accessToken });
    expect(out).toMatchObject({ status: 200, body: { success: true } });
    // The event was confirmed by the broker before logout answered; the gateway consumes it at once.
    await eventually(async () => (await sessionStatus(pair.accessToken)) === 401, 1_000, 10);
    const refused = await call(v1('/session'), { token: pair.accessToken });
    expect(refused.body.error).toBe('TOKEN_REVOKED');
    const sid = (JSON.parse(Buffer.from(pair.accessToken.split('.')[1] ?? '', 'base64url').toString()) as { sid: string }).sid;
    const revoked = await call<{ revocations: Array<{ sessionId: string; userId: string; expiresAt: string }> }>(
      `${s.gatewayUrl}/api/v1/internal/sessions/revoked`,
      { headers: { 'x-service-key': STACK_SERVICE_KEY } },
    );
    expect(revoked.body.revocations).toContainEqual({ sessionId: sid, userId: pair.user.id, expiresAt: expect.any(String) });
    const event = await s.waitForEvent('session.revoked.v1', (e) => (e.data as { sessionId: string }).sessionId === sid);
    expect(event.data).toMatchObject({ userId: pair.user.id });
    // The refresh token of the ended session is dead too; validate says why.
    expect((await call(v1('/refresh'), { body: { refreshToken: pair.refreshToken } })).status).toBe(401);
    expect((await call(v1('/validate'), { body: { token: pair.accessToken } })).body).toEqual({ valid: false, error: 'TOKEN_REVOKED' });
  });

  it('lists the caller’s sessions and ends one or all others', async () => {
    const { email, password } = await registerVerified(s);
    const a = await login(s, email, password, { deviceId: 'dev-a', deviceName: 'Phone' });
    const b = await login(s, email, password, { deviceId: 'dev-b', deviceName: 'Tablet' });
    const list = await call<{ sessions: Array<Record<string, unknown>> }>(v1('/sessions'), {
      token: a.accessToken,
      headers: { 'user-agent': 'e2e' },
    });
    expect(list.status).toBe(200);
    expect(list.body.sessions).toHaveLength(2);
    const mine = list.body.sessions.find((x) => x.current === true);
    expect(mine).toMatchObject({ deviceId: 'dev-a', deviceName: 'Phone', ipAddress: expect.any(String), userAgent: expect.any(String) });
    expect(mine).toHaveProperty('createdAt');
    expect(mine).toHaveProperty('lastUsedAt');
    expect(JSON.stringify(list.body)).not.toContain('token');
    const other = list.body.sessions.find((x) => x.current === false);
    expect(other?.deviceName).toBe('Tablet');

    expect((await call(v1(`/sessions/${String(other?.id)}`), { method: 'DELETE', token: a.accessToken })).status).toBe(200);
    await eventually(async () => (await sessionStatus(b.accessToken)) === 401, 1_000, 10);
    expect(await sessionStatus(a.accessToken)).toBe(200);
    const missing = await call(v1('/sessions/no-such-session'), { method: 'DELETE', token: a.accessToken });
    expect(missing).toMatchObject({ status: 404, body: { error: 'SESSION_NOT_FOUND' } });

    // Another user's session cannot be ended.
    const stranger = await registerVerified(s);
    const c = await login(s, stranger.email, stranger.password);
    const sidC = (JSON.parse(Buffer.from(c.accessToken.split('.')[1] ?? '', 'base64url').toString()) as { sid: string }).sid;
    expect((await call(v1(`/sessions/${sidC}`), { method: 'DELETE', token: a.accessToken })).status).toBe(404);
    expect(await sessionStatus(c.accessToken)).toBe(200);

    const d = await login(s, email, password);
    const e = await login(s, email, password);
    const all = await call(v1('/sessions'), { method: 'DELETE', token: a.accessToken });
    expect(all.body).toEqual({ success: true, revoked: 2 });
    await eventually(async () => (await sessionStatus(d.accessToken)) === 401 && (await sessionStatus(e.accessToken)) === 401, 1_000, 10);
    expect(await sessionStatus(a.accessToken)).toBe(200);
  });

  it('a password reset (mail, German by Accept-Language) ends every session; the new password must pass the rules', async () => {
    const { email, password } = await registerVerified(s);
    const a = await login(s, email, password);
    const b = await login(s, email, password);
    const client = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: cookieFetch(s.gatewayUrl).fetch });
    const asked = await client.requestPasswordReset(
      { email, redirectTo: '/reset' },
      { headers: { 'accept-language': 'de-DE,de;q=0.9,en;q=0.5' } },
    );
    expect(asked.error).toBeNull();
    const mail = await s.smtp.waitFor(email, (m) => m.text.includes('/reset-password/'));
    expect(mail.subject).toBe('Setze dein Passwort zurück');
    const token = /\/reset-password\/([^?\s]+)/.exec(mail.text)?.[1] ?? '';
    expect(token).not.toBe('');

    const weak = await client.resetPassword({ newPassword: 'iloveyou1', token });
    expect(weak.error?.status).toBe(400);
    expect((weak.error as { code?: string } | null)?.code).toBe('PASSWORD_TOO_COMMON');
    expect(await sessionStatus(a.accessToken)).toBe(200);

    const newPassword = strongPassword();
    expect((await client.resetPassword({ newPassword, token })).error).toBeNull();
    await eventually(async () => (await sessionStatus(a.accessToken)) === 401 && (await sessionStatus(b.accessToken)) === 401, 3_000);
    expect((await call(v1('/login'), { body: { email, password } })).status).toBe(401);
    await login(s, email, newPassword);
  });

  it('a password change ends the other sessions and keeps the current one', async () => {
    const { email, password } = await registerVerified(s);
    const other = await login(s, email, password);
    const jar = cookieFetch(s.gatewayUrl);
    const client = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: jar.fetch });
    expect((await client.signIn.email({ email, password })).error).toBeNull();
    const common = await client.changePassword({ currentPassword: password, newPassword: 'superman123' });
    expect((common.error as { code?: string } | null)?.code).toBe('PASSWORD_TOO_COMMON');
    const changed = await client.changePassword({ currentPassword: password, newPassword: strongPassword(), revokeOtherSessions: false });
    expect(changed.error).toBeNull();
    await eventually(async () => (await sessionStatus(other.accessToken)) === 401, 3_000);
    expect((await client.getSession()).data?.user.email).toBe(email);
  });

  it('two instances behave as one: a session made through one works through the other', async () => {
    const [a, b] = s.services.auth;
    if (!a || !b) throw new Error('two auth instances expected');
    const { email, password } = await registerVerified(s);
    const viaA = await call<TokenPair>(`${a.url}/api/v1/auth/login`, { body: { email, password } });
    expect(viaA.status).toBe(200);
    expect((await call(`${b.url}/api/v1/auth/session`, { token: viaA.body.accessToken })).status).toBe(200);
    const refreshed = await call<TokenPair>(`${b.url}/api/v1/auth/refresh`, { body: { refreshToken: viaA.body.refreshToken } });
    expect(refreshed.status).toBe(200);
    // Cookie session from A, read by B.
    const jar = cookieFetch(a.url);
    const signIn = await call(`${a.url}/api/auth/sign-in/email`, { body: { email, password }, fetch: jar.fetch });
    expect(signIn.status).toBe(200);
    const onB = await call<{ user: { email: string } }>(`${b.url}/api/auth/get-session`, { fetch: jar.fetch });
    expect(onB.body.user.email).toBe(email);
    // Logout through B ends what A issued.
    expect((await call(`${b.url}/api/v1/auth/logout`, { method: 'POST', token: refreshed.body.accessToken })).status).toBe(200);
    expect((await call(`${a.url}/api/v1/auth/session`, { token: refreshed.body.accessToken })).status).toBe(401);
    // Both publish the same keys.
    const ka = (await call(`${a.url}/api/auth/jwks`)).body;
    const kb = (await call(`${b.url}/.well-known/jwks.json`)).body;
    expect(ka).toEqual(kb);
  });

  it('serves the GDPR view to services only, without secrets', async () => {
    const { email, password, userId } = await registerVerified(s);
    await login(s, email, password, { deviceName: 'Desk' });
    const url = `${s.gatewayUrl}/api/v1/internal/users/${userId}/data`;
    expect((await call(url)).status).toBe(401);
    expect((await call(url, { headers: { 'x-service-key': 'wrong-key-wrong-key-wrong-key-wrong' } })).status).toBe(403);
    const data = await call<Record<string, unknown>>(url, { headers: { 'x-service-key': STACK_SERVICE_KEY } });
    expect(data.status).toBe(200);
    expect(data.body).toMatchObject({
      user: { id: userId, email },
      accounts: [{ providerId: 'credential', hasPassword: true }],
      sessions: [{ deviceName: 'Desk' }],
      twoFactorEnabled: false,
      organizations: [],
    });
    // No secret field, and none of the user's secret values (a security event's `"method":"password"` is fine).
    const json = JSON.stringify(data.body);
    expect(json).not.toMatch(/scrypt|"password"\s*:|"token"\s*:/);
    const secrets = await s.sql.query<{ v: string }>(
      `select password as v from auth.account where user_id = $1 and password is not null
       union all select token from auth.session where user_id = $1`,
      [userId],
    );
    expect(secrets.rows.length).toBeGreaterThan(1);
    for (const { v } of secrets.rows) expect(json).not.toContain(v);
    expect(
      (await call(`${s.gatewayUrl}/api/v1/internal/users/nope/data`, { headers: { 'x-service-key': STACK_SERVICE_KEY } })).status,
    ).toBe(404);
  });
});
