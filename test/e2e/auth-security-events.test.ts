import * as OTPAuth from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManaAuthClient } from '../../auth-svc/src/client';
import { call, cookieFetch } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { follow, registerVerified, strongPassword, uniqueEmail, type TokenPair } from '../helpers/users';

interface Event {
  id: string;
  type: string;
  ipAddress: string | null;
  userAgent: string | null;
  context: Record<string, unknown>;
  createdAt: string;
}

const UA = { 'user-agent': 'E2E Browser/1.0' };

describe('security events', () => {
  let s: Stack;
  let user: { email: string; password: string; userId: string };
  /** Every secret the user handled: none may appear in an event. */
  const secrets: string[] = [];
  const v1 = (path: string) => `${s.gatewayUrl}/api/v1/auth${path}`;
  const login = async (headers: Record<string, string> = UA) => {
    const res = await call<TokenPair>(v1('/login'), { body: { email: user.email, password: user.password }, headers });
    expect(res.status).toBe(200);
    secrets.push(res.body.accessToken, res.body.refreshToken);
    return res.body;
  };
  const types = async () =>
    (
      (await s.sql.query('select type from auth.security_events where user_id = $1 order by created_at', [user.userId])).rows as Array<{
        type: string;
      }>
    ).map((r) => r.type);
  const client = () => {
    const jar = cookieFetch(s.gatewayUrl);
    return createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: jar.fetch });
  };

  beforeAll(async () => {
    s = await startStack();
    user = await registerVerified(s);
    secrets.push(user.password);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('records sign-in success and failure (with reason, IP and user agent), refresh, logout', async () => {
    const pair = await login();
    expect((await call(v1('/login'), { body: { email: user.email, password: 'Not The Password 42' }, headers: UA })).status).toBe(401);
    const ghost = uniqueEmail('ghost');
    expect((await call(v1('/login'), { body: { email: ghost, password: 'Not The Password 42' } })).status).toBe(401);
    const refreshed = await call<TokenPair>(v1('/refresh'), { body: { refreshToken: pair.refreshToken } });
    secrets.push(refreshed.body.accessToken, refreshed.body.refreshToken);
    expect((await call(v1('/logout'), { method: 'POST', token: refreshed.body.accessToken })).status).toBe(200);

    const rows = (
      await s.sql.query('select type, ip_address, user_agent, context from auth.security_events where user_id = $1 order by created_at', [
        user.userId,
      ])
    ).rows as Array<{ type: string; ip_address: string; user_agent: string; context: Record<string, unknown> }>;
    const success = rows.find((r) => r.type === 'sign_in_success');
    expect(success).toMatchObject({
      ip_address: expect.stringMatching(/127\.0\.0\.1/),
      user_agent: 'E2E Browser/1.0',
      context: { method: 'password' },
    });
    expect(rows.find((r) => r.type === 'sign_in_failure')?.context).toEqual({ reason: 'invalid_password', method: 'password' });
    expect(rows.map((r) => r.type)).toEqual(expect.arrayContaining(['token_refreshed', 'sign_out']));
    const unknown = await s.sql.query(`select context from auth.security_events where user_id is null and type = 'sign_in_failure'`);
    expect(unknown.rows.map((r: { context: { reason: string } }) => r.context.reason)).toContain('unknown_email');
    expect(JSON.stringify(unknown.rows)).not.toContain(ghost);
  });

  it('mails the user about a sign-in from a new device, once per device', async () => {
    await login({ 'user-agent': 'Brand New Phone/2.0' });
    const mail = await s.smtp.waitFor(user.email, (m) => m.subject === 'New sign-in to your Mana account');
    expect(mail.text).toContain('Brand New Phone/2.0');
    await login({ 'user-agent': 'Brand New Phone/2.0' });
    await login();
    expect(s.smtp.messages.filter((m) => m.subject === 'New sign-in to your Mana account' && m.to.includes(user.email))).toHaveLength(1);
    expect((await types()).filter((t) => t === 'new_device_sign_in')).toHaveLength(1);
  });

  it('records native sign-out, password change and reset, email change', async () => {
    const c = client();
    expect((await c.signIn.email({ email: user.email, password: user.password }, { headers: UA })).error).toBeNull();
    const newPassword = strongPassword();
    expect((await c.changePassword({ currentPassword: user.password, newPassword })).error).toBeNull();
    user.password = newPassword;
    secrets.push(newPassword);
    expect((await c.signOut()).error).toBeNull();

    const r = client();
    expect((await r.requestPasswordReset({ email: user.email, redirectTo: '/reset' })).error).toBeNull();
    const resetMail = await s.smtp.waitFor(user.email, (m) => m.text.includes('/reset-password/'));
    const token = /\/reset-password\/([^?\s]+)/.exec(resetMail.text)?.[1] ?? '';
    secrets.push(token);
    const resetTo = strongPassword();
    expect((await r.resetPassword({ newPassword: resetTo, token })).error).toBeNull();
    user.password = resetTo;
    secrets.push(resetTo);

    const e = client();
    await e.signIn.email({ email: user.email, password: user.password }, { headers: UA });
    const newEmail = uniqueEmail('moved');
    expect((await e.changeEmail({ newEmail })).error).toBeNull();
    const approve = await s.smtp.waitFor(user.email, (m) => m.subject === 'Confirm the change of your email address');
    expect(await follow(s.smtp.linkIn(approve))).toBeLessThan(400);
    const confirm = await s.smtp.waitFor(newEmail, (m) => m.subject === 'Confirm your new email address');
    expect(await follow(s.smtp.linkIn(confirm))).toBeLessThan(400);
    user.email = newEmail;
    expect(await types()).toEqual(
      expect.arrayContaining(['sign_out', 'password_changed', 'password_reset', 'email_change_requested', 'email_changed']),
    );
  });

  it('records two-factor enabled, failed, backup code used, codes regenerated, disabled', async () => {
    const c = client();
    await c.signIn.email({ email: user.email, password: user.password }, { headers: UA });
    const enabled = await c.twoFactor.enable({ password: user.password });
    const data = enabled.data as unknown as { totpURI: string; backupCodes: string[] };
    const totp = OTPAuth.URI.parse(data.totpURI) as OTPAuth.TOTP;
    secrets.push(totp.secret.base32, ...data.backupCodes);
    const code = totp.generate();
    secrets.push(code);
    expect((await c.twoFactor.verifyTotp({ code })).error).toBeNull();

    const started = await call<{ challenge: string }>(v1('/login'), { body: { email: user.email, password: user.password } });
    secrets.push(started.body.challenge);
    const bad = totp.generate() === '000000' ? '111111' : '000000';
    expect((await call(v1('/login/2fa'), { body: { challenge: started.body.challenge, code: bad } })).status).toBe(401);
    const used = await call<TokenPair>(v1('/login/2fa'), { body: { challenge: started.body.challenge, code: data.backupCodes[0] } });
    expect(used.status).toBe(200);
    secrets.push(used.body.accessToken, used.body.refreshToken);

    const d = client();
    await d.signIn.email({ email: user.email, password: user.password });
    // A code works once: the enrolment used this step's, so the next step's.
    expect((await d.twoFactor.verifyTotp({ code: totp.generate({ timestamp: Date.now() + 30_000 }) })).error).toBeNull();
    const fresh = await d.twoFactor.generateBackupCodes({ password: user.password });
    secrets.push(...(fresh.data?.backupCodes ?? []));
    expect((await d.twoFactor.disable({ password: user.password })).error).toBeNull();

    const all = await types();
    expect(all).toEqual(
      expect.arrayContaining([
        'two_factor_enabled',
        'two_factor_failed',
        'backup_code_used',
        'backup_codes_regenerated',
        'two_factor_disabled',
      ]),
    );
    const signIns = await s.sql.query(`select context from auth.security_events where user_id = $1 and type = 'sign_in_success'`, [
      user.userId,
    ]);
    expect(signIns.rows.map((r: { context: { method: string } }) => r.context.method)).toEqual(
      expect.arrayContaining(['password', 'backup_code', 'totp']),
    );
  });

  it('GET /security-events: the caller’s own events, newest first, paginated, without any secret', async () => {
    const pair = await login();
    const first = await call<{ events: Event[]; nextCursor: string | null }>(v1('/security-events?limit=3'), { token: pair.accessToken });
    expect(first.status).toBe(200);
    expect(first.body.events).toHaveLength(3);
    expect(first.body.events[0]).toMatchObject({ type: 'sign_in_success', context: { method: 'password' }, userAgent: 'E2E Browser/1.0' });
    const all: Event[] = [...first.body.events];
    let cursor = first.body.nextCursor;
    while (cursor) {
      const page = await call<{ events: Event[]; nextCursor: string | null }>(v1(`/security-events?limit=7&cursor=${cursor}`), {
        token: pair.accessToken,
      });
      expect(page.status).toBe(200);
      all.push(...page.body.events);
      cursor = page.body.nextCursor;
    }
    const total = await s.sql.query<{ n: number }>('select count(*)::int as n from auth.security_events where user_id = $1', [user.userId]);
    expect(all).toHaveLength(total.rows[0].n);
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    const times = all.map((e) => Date.parse(e.createdAt));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const dump = JSON.stringify(all);
    for (const secret of secrets) expect(dump).not.toContain(secret);
    const everything = JSON.stringify((await s.sql.query('select context, user_agent from auth.security_events')).rows);
    for (const secret of secrets) expect(everything).not.toContain(secret);

    // Someone else sees only their own; bad input is named; no token, no list.
    const other = await registerVerified(s);
    const theirs = await call<TokenPair>(v1('/login'), { body: { email: other.email, password: other.password } });
    const list = await call<{ events: Event[] }>(v1('/security-events'), { token: theirs.body.accessToken });
    expect(list.body.events.map((e) => e.type)).toEqual(['sign_in_success']);
    expect((await call(v1('/security-events?cursor=bogus'), { token: pair.accessToken })).body).toMatchObject({ error: 'INVALID_CURSOR' });
    expect((await call(v1('/security-events?limit=1000'), { token: pair.accessToken })).status).toBe(400);
    expect((await call(v1('/security-events'))).status).toBe(401);
  });
});
