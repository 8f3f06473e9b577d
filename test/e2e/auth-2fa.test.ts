import * as OTPAuth from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManaAuthClient } from '../../auth-svc/src/client';
import { call, cookieFetch } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { totpCodes } from '../helpers/totp';
import { registerVerified, type TokenPair } from '../helpers/users';

interface Challenge {
  twoFactorRequired: true;
  challenge: string;
  expiresIn: number;
}

describe('two-factor authentication through the gateway', () => {
  let s: Stack;
  let user: { email: string; password: string; userId: string };
  let totp: OTPAuth.TOTP;
  /** A code not used yet (a TOTP code works once). */
  let nextCode: () => Promise<string>;
  let backupCodes: string[];
  const v1 = (path: string) => `${s.gatewayUrl}/api/v1/auth${path}`;
  const client = () => {
    const jar = cookieFetch(s.gatewayUrl);
    return { jar, client: createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: jar.fetch }) };
  };
  const startLogin = async (extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
    const res = await call<Challenge>(v1('/login'), { body: { email: user.email, password: user.password, ...extra }, headers });
    expect(res.status).toBe(200);
    return res.body;
  };
  const second = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    call<TokenPair & { trustDeviceToken?: string; error?: string }>(v1('/login/2fa'), { body, headers });

  beforeAll(async () => {
    s = await startStack();
    user = await registerVerified(s);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('enables TOTP with the password: otpauth URI (SHA-1, 30 s, 6 digits), QR code, 10 backup codes stored hashed', async () => {
    const { client: c } = client();
    expect((await c.signIn.email({ email: user.email, password: user.password })).error).toBeNull();
    const wrong = await c.twoFactor.enable({ password: 'Not The Password 42' });
    expect(wrong.error?.status).toBe(400);

    const enabled = await c.twoFactor.enable({ password: user.password });
    expect(enabled.error).toBeNull();
    const data = enabled.data as unknown as { totpURI: string; backupCodes: string[]; qrCode: string };
    const parsed = OTPAuth.URI.parse(data.totpURI);
    if (!(parsed instanceof OTPAuth.TOTP)) throw new Error('not a TOTP URI');
    expect(parsed).toMatchObject({ issuer: 'Mana', label: user.email, algorithm: 'SHA1', digits: 6, period: 30 });
    totp = parsed;
    nextCode = totpCodes(s, totp, user.userId);
    expect(data.qrCode.startsWith('data:image/svg+xml;base64,')).toBe(true);
    expect(Buffer.from(data.qrCode.split(',')[1] ?? '', 'base64').toString()).toContain('<svg');
    expect(data.backupCodes).toHaveLength(10);
    expect(new Set(data.backupCodes).size).toBe(10);
    backupCodes = data.backupCodes;

    // Not active until a code proves the authenticator works: login still answers tokens.
    expect((await call<TokenPair>(v1('/login'), { body: { email: user.email, password: user.password } })).body.accessToken).toEqual(
      expect.any(String),
    );
    expect((await c.twoFactor.verifyTotp({ code: '000000' === totp.generate() ? '111111' : '000000' })).error?.status).toBe(401);
    expect((await c.twoFactor.verifyTotp({ code: await nextCode() })).error).toBeNull();

    const row = await s.sql.query<{ two_factor_enabled: boolean; secret: string; backup_codes: string }>(
      'select u.two_factor_enabled, t.secret, t.backup_codes from auth."user" u join auth.two_factor t on t.user_id = u.id where u.id = $1',
      [user.userId],
    );
    expect(row.rows[0].two_factor_enabled).toBe(true);
    const stored = row.rows[0].backup_codes;
    for (const code of backupCodes) expect(stored).not.toContain(code);
    expect((JSON.parse(stored) as string[]).every((h) => h.startsWith('h1:'))).toBe(true);
    expect(row.rows[0].secret).not.toContain(totp.secret.base32);
  });

  it('native sign-in then requires the TOTP code', async () => {
    const { jar, client: c } = client();
    const signIn = await c.signIn.email({ email: user.email, password: user.password });
    expect(signIn.data).toMatchObject({ twoFactorRedirect: true });
    expect(jar.cookies.has('mana.session_token')).toBe(false);
    expect((await c.getSession()).data).toBeNull();
    expect((await c.twoFactor.verifyTotp({ code: '12345' })).error?.status).toBe(401);
    expect((await c.twoFactor.verifyTotp({ code: await nextCode() })).error).toBeNull();
    expect((await c.getSession()).data?.user.email).toBe(user.email);
  });

  it('POST /api/v1/auth/login answers a challenge; /login/2fa with the code answers the token pair; the challenge is single use', async () => {
    const started = await startLogin({ deviceId: 'phone-1', deviceName: 'Phone' });
    expect(started).toEqual({ twoFactorRequired: true, challenge: expect.any(String), expiresIn: 600 });
    expect(started).not.toHaveProperty('accessToken');
    const stored = await s.sql.query('select challenge_hash, sealed from auth.two_factor_challenges where user_id = $1', [user.userId]);
    expect(JSON.stringify(stored.rows)).not.toContain(started.challenge);

    const wrong = await second({ challenge: started.challenge, code: '000000' === totp.generate() ? '111111' : '000000' });
    expect(wrong).toMatchObject({ status: 401, body: { error: 'INVALID_TWO_FACTOR_CODE' } });
    const ok = await second({ challenge: started.challenge, code: await nextCode() });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { id: user.userId } });
    const session = await call<{ session: { deviceName: string } }>(v1('/session'), { token: ok.body.accessToken });
    expect(session.body.session.deviceName).toBe('Phone');
    expect((await call<TokenPair>(v1('/refresh'), { body: { refreshToken: ok.body.refreshToken } })).status).toBe(200);

    const again = await second({ challenge: started.challenge, code: totp.generate() });
    expect(again).toMatchObject({ status: 401, body: { error: 'INVALID_CHALLENGE' } });
    expect((await second({ challenge: 'x'.repeat(43), code: totp.generate() })).body.error).toBe('INVALID_CHALLENGE');
    expect((await second({ challenge: started.challenge })).status).toBe(400);
  });

  it('binds the challenge to the client and expires it', async () => {
    const other = await startLogin({}, { 'user-agent': 'Device A' });
    expect((await second({ challenge: other.challenge, code: totp.generate() }, { 'user-agent': 'Device B' })).body.error).toBe(
      'INVALID_CHALLENGE',
    );
    expect((await second({ challenge: other.challenge, code: await nextCode() }, { 'user-agent': 'Device A' })).status).toBe(200);

    const late = await startLogin();
    await s.sql.query(`update auth.two_factor_challenges set expires_at = now() - interval '1 second' where user_id = $1`, [user.userId]);
    expect((await second({ challenge: late.challenge, code: totp.generate() })).body.error).toBe('INVALID_CHALLENGE');
  });

  it('a backup code works once, on either path', async () => {
    const [first, second_, third] = backupCodes;
    const started = await startLogin();
    const used = await second({ challenge: started.challenge, code: first });
    expect(used.status).toBe(200);
    const reuse = await startLogin();
    expect((await second({ challenge: reuse.challenge, code: first })).body.error).toBe('INVALID_TWO_FACTOR_CODE');
    expect((await second({ challenge: reuse.challenge, code: second_ })).status).toBe(200);

    const { client: c } = client();
    expect((await c.signIn.email({ email: user.email, password: user.password })).data).toMatchObject({ twoFactorRedirect: true });
    expect((await c.twoFactor.verifyBackupCode({ code: third ?? '' })).error).toBeNull();
    expect((await c.getSession()).data?.user.id).toBe(user.userId);
    const { client: d } = client();
    await d.signIn.email({ email: user.email, password: user.password });
    expect((await d.twoFactor.verifyBackupCode({ code: third ?? '' })).error?.status).toBe(401);
    const left = await s.sql.query<{ backup_codes: string }>('select backup_codes from auth.two_factor where user_id = $1', [user.userId]);
    expect(JSON.parse(left.rows[0].backup_codes)).toHaveLength(7);
  });

  it('regenerating backup codes replaces all of them', async () => {
    const { client: c } = client();
    await c.signIn.email({ email: user.email, password: user.password });
    await c.twoFactor.verifyTotp({ code: await nextCode() });
    const fresh = await c.twoFactor.generateBackupCodes({ password: user.password });
    expect(fresh.error).toBeNull();
    const codes = fresh.data?.backupCodes ?? [];
    expect(codes).toHaveLength(10);
    const oldUnused = backupCodes[5] ?? '';
    const started = await startLogin();
    expect((await second({ challenge: started.challenge, code: oldUnused })).body.error).toBe('INVALID_TWO_FACTOR_CODE');
    expect((await second({ challenge: started.challenge, code: codes[0] })).status).toBe(200);
    backupCodes = codes.slice(1);
  });

  it('"trust this device" skips the second factor for that device only', async () => {
    const started = await startLogin();
    const trusted = await second({ challenge: started.challenge, code: await nextCode(), trustDevice: true });
    expect(trusted.status).toBe(200);
    const token = trusted.body.trustDeviceToken ?? '';
    expect(token).not.toBe('');
    const direct = await call<TokenPair & { trustDeviceToken?: string }>(v1('/login'), {
      body: { email: user.email, password: user.password, trustDeviceToken: token },
    });
    expect(direct.body.accessToken).toEqual(expect.any(String));
    expect(direct.body.trustDeviceToken).toEqual(expect.any(String));
    // Without the token (another device) or with a forged one, the second factor is required.
    expect((await startLogin()).twoFactorRequired).toBe(true);
    expect((await startLogin({ trustDeviceToken: `${token.slice(0, -6)}AAAAAA` })).twoFactorRequired).toBe(true);
  });

  it('bearer clients manage two-factor through /api/v1/auth/2fa/* (enable, verify, regenerate, disable with a code)', async () => {
    const other = await registerVerified(s);
    const first = (await call<TokenPair>(v1('/login'), { body: { email: other.email, password: other.password, deviceName: 'Tablet' } }))
      .body;
    expect((await call(v1('/2fa/enable'), { body: { password: 'Not The Password 42' }, token: first.accessToken })).status).toBe(400);
    const enabled = await call<{ totpURI: string; backupCodes: string[]; qrCode: string }>(v1('/2fa/enable'), {
      body: { password: other.password },
      token: first.accessToken,
    });
    expect(enabled.status).toBe(200);
    expect(enabled.body.qrCode.startsWith('data:image/svg+xml;base64,')).toBe(true);
    expect(enabled.body.backupCodes).toHaveLength(10);
    const mine = OTPAuth.URI.parse(enabled.body.totpURI) as OTPAuth.TOTP;
    const bad = mine.generate() === '000000' ? '111111' : '000000';
    expect((await call(v1('/2fa/verify'), { body: { code: bad }, token: first.accessToken })).status).toBe(401);
    // A wrong code inside a session counts toward the lockout too (as does the wrong password above, issue 13).
    expect(
      (await s.sql.query<{ failures: number }>('select failures from auth.sign_in_lockouts where email = $1', [other.email])).rows[0]
        ?.failures,
    ).toBe(2);
    const verified = await call<{ status: boolean; tokens: TokenPair }>(v1('/2fa/verify'), {
      body: { code: mine.generate() },
      token: first.accessToken,
    });
    expect(verified.status).toBe(200);
    // Better Auth replaced the session: the new pair works and keeps the device, the old one is ended.
    const next = verified.body.tokens;
    const session = await call<{ session: { deviceName: string } }>(v1('/session'), { token: next.accessToken });
    expect(session.body.session.deviceName).toBe('Tablet');
    expect((await call(v1('/session'), { token: first.accessToken })).status).toBe(401);
    expect((await call<Challenge>(v1('/login'), { body: { email: other.email, password: other.password } })).body.twoFactorRequired).toBe(
      true,
    );

    const regenerated = await call<{ backupCodes: string[] }>(v1('/2fa/backup-codes'), {
      body: { password: other.password },
      token: next.accessToken,
    });
    expect(regenerated.body.backupCodes).toHaveLength(10);
    expect((await call(v1('/2fa/disable'), { body: { code: enabled.body.backupCodes[0] }, token: next.accessToken })).status).toBe(401);
    expect((await call(v1('/2fa/disable'), { body: {}, token: next.accessToken })).status).toBe(400);
    const disabled = await call(v1('/2fa/disable'), { body: { code: regenerated.body.backupCodes[0] }, token: next.accessToken });
    expect(disabled).toMatchObject({ status: 200, body: { status: true } });
    expect((await call<TokenPair>(v1('/login'), { body: { email: other.email, password: other.password } })).body.accessToken).toEqual(
      expect.any(String),
    );
    const events = await s.sql.query<{ context: unknown }>(
      `select context from auth.security_events where user_id = $1 and type = 'two_factor_disabled'`,
      [other.userId],
    );
    expect(events.rows[0]?.context).toEqual({ with: 'code' });
    expect((await call(v1('/2fa/enable'), { body: { password: other.password } })).status).toBe(401);
  });

  it('disabling requires the password; afterwards login answers tokens again', async () => {
    const { client: c } = client();
    await c.signIn.email({ email: user.email, password: user.password });
    await c.twoFactor.verifyTotp({ code: await nextCode() });
    expect((await c.twoFactor.disable({ password: 'Not The Password 42' })).error?.status).toBe(400);
    expect((await c.twoFactor.disable({ password: user.password })).error).toBeNull();
    const res = await call<TokenPair>(v1('/login'), { body: { email: user.email, password: user.password } });
    expect(res.body.accessToken).toEqual(expect.any(String));
    expect((await s.sql.query('select 1 from auth.two_factor where user_id = $1', [user.userId])).rowCount).toBe(0);
  });
});
