import * as OTPAuth from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManaAuthClient } from '../../auth-svc/src/client';
import { call, cookieFetch } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified, uniqueEmail, type TokenPair } from '../helpers/users';

const APP = 'https://app.mana.test';

describe('magic link sign-in', () => {
  let s: Stack;
  let user: { email: string; password: string; userId: string };
  const ask = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    call(`${s.gatewayUrl}/api/auth/sign-in/magic-link`, { body, headers });
  const open = (link: string) => fetch(link, { redirect: 'manual' });
  const linkFor = async (email: string, subject: string) => {
    const mail = await s.smtp.waitFor(email, (m) => m.subject === subject && !used.has(m.raw));
    used.add(mail.raw);
    return { mail, link: s.smtp.linkIn(mail) };
  };
  const used = new Set<string>();

  beforeAll(async () => {
    s = await startStack({ env: { MAGIC_LINK_CALLBACK_ALLOWLIST: APP } });
    user = await registerVerified(s);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('answers the same for a registered and an unknown email; only the registered one gets a mail', async () => {
    const known = await ask({ email: user.email, callbackURL: `${APP}/home` });
    const ghost = uniqueEmail('ghost');
    const unknown = await ask({ email: ghost, callbackURL: `${APP}/home` });
    expect(known).toMatchObject({ status: 200, body: { status: true } });
    expect(unknown).toMatchObject({ status: known.status, body: known.body });
    const { mail, link } = await linkFor(user.email, 'Your sign-in link for Mana');
    expect(mail.text).toContain('10 minutes');
    expect(link.startsWith(`${s.gatewayUrl}/api/auth/magic-link/verify?token=`)).toBe(true);
    expect(s.smtp.messages.some((m) => m.to.includes(ghost))).toBe(false);
    // The token is stored hashed.
    const token = new URL(link).searchParams.get('token') ?? '';
    const rows = await s.sql.query('select identifier, value from auth.verification');
    expect(JSON.stringify(rows.rows)).not.toContain(token);
  });

  it('signs in once and redirects to the allowlisted callback; a second use is refused', async () => {
    await ask({ email: user.email, callbackURL: `${APP}/welcome` }, { 'accept-language': 'de-DE' });
    const { mail, link } = await linkFor(user.email, 'Dein Anmeldelink für Mana');
    expect(mail.text).toContain('10 Minuten');
    const first = await open(link);
    expect(first.status).toBe(302);
    expect(first.headers.get('location')).toBe(`${APP}/welcome`);
    const cookie = first.headers.getSetCookie().find((c) => c.startsWith('mana.session_token='));
    expect(cookie).toBeDefined();
    const jar = cookieFetch(s.gatewayUrl);
    jar.cookies.set('mana.session_token', (cookie ?? '').split(';')[0]?.split('=').slice(1).join('=') ?? '');
    const session = await createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: jar.fetch }).getSession();
    expect(session.data?.user.id).toBe(user.userId);

    const second = await open(link);
    expect(second.headers.get('location') ?? '').toMatch(/error=/);
    expect(second.headers.getSetCookie().some((c) => c.startsWith('mana.session_token=') && !/max-age=0/i.test(c))).toBe(false);
    const types = (await s.sql.query('select type, context from auth.security_events where user_id = $1', [user.userId])).rows.map(
      (r: { type: string; context: { method?: string } }) => `${r.type}${r.context.method ? `:${r.context.method}` : ''}`,
    );
    expect(types).toEqual(expect.arrayContaining(['magic_link_sent', 'magic_link_used', 'sign_in_success:magic_link']));
  });

  it('never signs in an account with two-factor on: no link is mailed, and an older link is refused', async () => {
    const twoFa = await registerVerified(s);
    // A link asked for while 2FA was still off…
    await ask({ email: twoFa.email, callbackURL: `${APP}/home` });
    const { link } = await linkFor(twoFa.email, 'Your sign-in link for Mana');
    // …then two-factor is turned on.
    const pair = await login(s, twoFa.email, twoFa.password);
    const v1 = (p: string) => `${s.gatewayUrl}/api/v1/auth${p}`;
    const enabled = await call<{ totpURI: string }>(v1('/2fa/enable'), { body: { password: twoFa.password }, token: pair.accessToken });
    const totp = OTPAuth.URI.parse(enabled.body.totpURI) as OTPAuth.TOTP;
    expect(
      (await call<{ tokens: TokenPair }>(v1('/2fa/verify'), { body: { code: totp.generate() }, token: pair.accessToken })).status,
    ).toBe(200);

    const refused = await open(link);
    expect(refused.status).toBe(302);
    expect(refused.headers.get('location')).toBe(`${APP}/home?error=TWO_FACTOR_REQUIRED`);
    expect(refused.headers.getSetCookie().some((c) => c.startsWith('mana.session_token=') && !/max-age=0/i.test(c))).toBe(false);
    // The link is spent, and a new request answers as always but mails nothing.
    expect((await open(link)).headers.get('location') ?? '').toMatch(/error=INVALID_TOKEN/);
    const before = s.smtp.messages.filter((m) => m.to.includes(twoFa.email)).length;
    expect(await ask({ email: twoFa.email, callbackURL: `${APP}/home` })).toMatchObject({ status: 200, body: { status: true } });
    const events = await s.sql.query(`select type from auth.security_events where user_id = $1 and type = 'magic_link_refused'`, [
      twoFa.userId,
    ]);
    expect(events.rows).toHaveLength(2);
    expect(s.smtp.messages.filter((m) => m.to.includes(twoFa.email)).length).toBe(before);
  });

  it('expires after 10 minutes', async () => {
    await ask({ email: user.email, callbackURL: '/dashboard' });
    const { link } = await linkFor(user.email, 'Your sign-in link for Mana');
    const stored = await s.sql.query(`select expires_at - created_at as ttl from auth.verification where value like '%magic-link%'`);
    expect(stored.rows.map((r: { ttl: { minutes?: number } }) => r.ttl.minutes)).toContain(10);
    await s.sql.query(`update auth.verification set expires_at = now() - interval '1 second' where value like '%magic-link%'`);
    const late = await open(link);
    expect(late.headers.get('location') ?? '').toMatch(/error=/);
    expect(late.headers.getSetCookie().some((c) => c.startsWith('mana.session_token=') && !/max-age=0/i.test(c))).toBe(false);
  });

  it('refuses open redirects when asking and when following the link', async () => {
    const evil = [
      'https://evil.example/x',
      '//evil.example',
      '/\\evil.example',
      '\\\\evil.example',
      'https://app.mana.test.evil.example/',
      'javascript:alert(1)',
      `${APP}@evil.example`,
      'https://user@app.mana.test/',
    ];
    for (const target of evil) {
      for (const field of ['callbackURL', 'errorCallbackURL', 'newUserCallbackURL']) {
        const res = await ask({ email: user.email, [field]: target });
        expect(res.status, `${field}=${target}`).toBe(400);
        expect(res.body).toMatchObject({ code: 'INVALID_CALLBACK_URL' });
      }
    }
    // A genuine link whose callback is swapped afterwards: refused before the token is spent.
    await ask({ email: user.email, callbackURL: `${APP}/ok` });
    const { link } = await linkFor(user.email, 'Your sign-in link for Mana');
    const tampered = new URL(link);
    tampered.searchParams.set('callbackURL', '//evil.example');
    const refused = await open(tampered.toString());
    expect(refused.status).toBe(400);
    expect(refused.headers.get('location')).toBeNull();
    const genuine = await open(link);
    expect(genuine.headers.get('location')).toBe(`${APP}/ok`);
  });
});
