import * as OTPAuth from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManaAuthClient } from '../../auth-svc/src/client';
import { call, cookieFetch } from '../helpers/http';
import { STACK_SERVICE_KEY, startStack, type Stack } from '../helpers/stack';
import { registerVerified, uniqueEmail, type TokenPair } from '../helpers/users';
import { runScript } from '../helpers/scripts';

const WRONG = 'Not The Password 42';
const MAX = 3;

describe('lockout across every sign-in path (3 failures in 15 minutes, two auth-svc instances)', () => {
  let s: Stack;
  const v1 = (path: string) => `${s.gatewayUrl}/api/v1/auth${path}`;
  const v1Login = (email: string, password: string, base = s.gatewayUrl) =>
    call(`${base}/api/v1/auth/login`, { body: { email, password } });
  const nativeSignIn = (email: string, password: string) => call(`${s.gatewayUrl}/api/auth/sign-in/email`, { body: { email, password } });
  const strip = (b: Record<string, unknown>) => ({ ...b, requestId: undefined });
  const events = async (userId: string, type: string) =>
    (await s.sql.query('select context, ip_address, user_agent from auth.security_events where user_id = $1 and type = $2', [userId, type]))
      .rows as Array<{
      context: Record<string, unknown>;
      ip_address: string | null;
    }>;

  /** The failed attempts counted against an email now. */
  const failuresOf = async (email: string) =>
    (await s.sql.query<{ failures: number }>('select failures from auth.sign_in_lockouts where email = $1', [email])).rows[0]?.failures ??
    0;
  /** A Better Auth client signed in as the user (its cookies kept); in an object: the client answers any property, `then` too. */
  const signedIn = async (user: { email: string; password: string }): Promise<{ c: ReturnType<typeof createManaAuthClient> }> => {
    const jar = cookieFetch(s.gatewayUrl);
    const c = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: jar.fetch });
    await c.signIn.email({ email: user.email, password: user.password });
    return { c };
  };

  beforeAll(async () => {
    s = await startStack({
      authInstances: 2,
      env: { LOCKOUT_MAX_ATTEMPTS: String(MAX), LOCKOUT_WINDOW_MINUTES: '15', LOCKOUT_DURATION_MINUTES: '30' },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('locks after N failures counted on both instances and both paths; locked, unknown and wrong-password answers are identical; the user gets a mail', async () => {
    const user = await registerVerified(s);
    const [a, b] = s.services.auth;
    if (!a || !b) throw new Error('two instances expected');
    expect((await v1Login(user.email, WRONG, a.url)).status).toBe(401);
    expect((await v1Login(user.email.toUpperCase(), WRONG, b.url)).status).toBe(401);
    expect(await failuresOf(user.email)).toBe(2);
    expect((await nativeSignIn(user.email, WRONG)).status).toBe(401);

    const mail = await s.smtp.waitFor(user.email, (m) => m.subject === 'Your Mana account is temporarily locked');
    expect(mail.text).toContain('30 minutes');
    // The right password is now refused exactly like a wrong one, on both paths.
    const locked = await v1Login(user.email, user.password);
    const wrong = await v1Login(uniqueEmail('never'), WRONG);
    expect(locked.status).toBe(401);
    expect(strip(locked.body)).toEqual(strip(wrong.body));
    const nLocked = await nativeSignIn(user.email, user.password);
    const nWrong = await nativeSignIn(uniqueEmail('never'), WRONG);
    expect(nLocked).toMatchObject({ status: nWrong.status, body: nWrong.body });
    expect((await events(user.userId, 'account_locked')).length).toBe(1);
    expect((await events(user.userId, 'sign_in_failure')).map((e) => e.context.reason)).toContain('locked');

    // Operator unlock.
    const env = { ...process.env, ...s.env, LOG_LEVEL: 'silent' };
    const out = await runScript('auth-svc/scripts/unlock.ts', [user.email], env);
    expect(out.stdout).toContain('unlocked');
    expect((await v1Login(user.email, user.password)).status).toBe(200);
    expect((await events(user.userId, 'account_unlocked'))[0]?.context).toMatchObject({ by: 'operator', wasLocked: true });
    await expect(runScript('auth-svc/scripts/unlock.ts', [], env)).rejects.toMatchObject({ code: 2 });
  });

  it('a burst of parallel guesses gets no more password checks than the limit (each attempt counted before its check)', async () => {
    const user = await registerVerified(s);
    const burst = await Promise.all(Array.from({ length: 12 }, () => v1Login(user.email, WRONG)));
    expect(burst.map((r) => r.status)).toEqual(Array.from({ length: 12 }, () => 401));
    // Every answer alike; the password was checked at most MAX times, the rest were refused unchecked (beyond the
    // limit while the first ones were checked, or locked once one of those failed).
    for (const r of burst) expect(strip(r.body)).toEqual(strip(burst[0]?.body ?? {}));
    const failures = await events(user.userId, 'sign_in_failure');
    const unchecked = (e: { context: Record<string, unknown> }) => e.context.reason === 'locked' || e.context.reason === 'limit';
    expect(failures.filter((e) => !unchecked(e)).length).toBeLessThanOrEqual(MAX);
    expect(failures.filter(unchecked).length).toBeGreaterThanOrEqual(12 - MAX);
    expect((await events(user.userId, 'account_locked')).length).toBe(1);
    expect((await v1Login(user.email, user.password)).status).toBe(401);
  });

  it('more parallel sign-ins with the right password than the limit lock nothing: the ones beyond it are refused and given back', async () => {
    const user = await registerVerified(s);
    const burst = await Promise.all(Array.from({ length: 4 * MAX }, () => v1Login(user.email, user.password)));
    // At least the first MAX were checked and succeeded; any beyond the limit while they ran got the wrong-password answer.
    expect(burst.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(MAX);
    for (const r of burst) expect([200, 401]).toContain(r.status);
    expect(await events(user.userId, 'account_locked')).toEqual([]);
    const refused = (await events(user.userId, 'sign_in_failure')).map((e) => e.context.reason);
    expect(refused.every((r) => r === 'limit')).toBe(true);
    expect((await s.sql.query('select locked_until from auth.sign_in_lockouts where email = $1', [user.email])).rows).toEqual([]);
    expect((await v1Login(user.email, user.password)).status).toBe(200);
  });

  it('an attempt beyond the limit while the ones before it are checked is refused unchecked, given back, and locks nothing', async () => {
    const user = await registerVerified(s);
    // MAX attempts charged and not yet settled (as while they are checked), no lock.
    await s.sql.query('insert into auth.sign_in_lockouts (email, failures) values ($1, $2)', [user.email, MAX]);
    const refused = await v1Login(user.email, user.password);
    expect(refused).toMatchObject({ status: 401, body: { error: 'INVALID_CREDENTIALS' } });
    expect((await events(user.userId, 'sign_in_failure')).map((e) => e.context)).toEqual([{ reason: 'limit', method: 'password' }]);
    expect(await events(user.userId, 'account_locked')).toEqual([]);
    expect((await s.sql.query('select failures, locked_until from auth.sign_in_lockouts where email = $1', [user.email])).rows).toEqual([
      { failures: MAX, locked_until: null },
    ]);
  });

  it("another plugin's refusal before the check costs no attempt (step-up on a stale session)", async () => {
    const user = await registerVerified(s);
    const { c } = await signedIn(user);
    const sid = (await c.getSession()).data?.session.id ?? '';
    await s.sql.query(`update auth.session set created_at = created_at - interval '1 hour' where id = $1`, [sid]);
    await s.sql.query(`update auth.session_reauth set reauthenticated_at = reauthenticated_at - interval '1 hour' where session_id = $1`, [
      sid,
    ]);
    for (let i = 0; i < MAX + 1; i++) {
      const r = await c.twoFactor.disable({ password: user.password });
      expect(r.error?.code).toBe('REAUTH_REQUIRED');
    }
    expect(await failuresOf(user.email)).toBe(0);
    expect((await v1Login(user.email, user.password)).status).toBe(200);
  });

  it("the OAuth provider's refusal of a forged oauth_query costs no attempt", async () => {
    const user = await registerVerified(s);
    for (let i = 0; i < MAX + 1; i++) {
      const r = await call<{ error?: string }>(`${s.gatewayUrl}/api/auth/sign-in/email`, {
        body: { email: user.email, password: WRONG, oauth_query: 'client_id=x&sig=forged' },
      });
      expect(r).toMatchObject({ status: 400, body: { error: 'invalid_signature' } });
    }
    expect(await failuresOf(user.email)).toBe(0);
    expect((await v1Login(user.email, user.password)).status).toBe(200);
  });

  it('a replayed TOTP code counts like a wrong one: the replay that reaches the limit takes the lock', async () => {
    const user = await registerVerified(s);
    const { c } = await signedIn(user);
    const enabled = await c.twoFactor.enable({ password: user.password });
    const totp = OTPAuth.URI.parse((enabled.data as unknown as { totpURI: string }).totpURI) as OTPAuth.TOTP;
    const used = totp.generate();
    // The enrolment uses the code; from here on it is a replay (refused by totp-once before Better Auth checks it).
    expect((await c.twoFactor.verifyTotp({ code: used })).error).toBeNull();
    const challenge = (await call<{ challenge: string }>(v1('/login'), { body: { email: user.email, password: user.password } })).body
      .challenge;
    for (let i = 0; i < MAX; i++) {
      const r = await call<{ error?: string }>(v1('/login/2fa'), { body: { challenge, code: used } });
      expect(r.body.error).toBe('INVALID_TWO_FACTOR_CODE');
    }
    const row = await s.sql.query<{ locked: boolean }>(
      'select locked_until > now() as locked from auth.sign_in_lockouts where email = $1',
      [user.email],
    );
    expect(row.rows[0]?.locked).toBe(true);
    expect((await events(user.userId, 'account_locked')).length).toBe(1);
  });

  it('an admin (through admin-svc, service key) can unlock', async () => {
    const user = await registerVerified(s);
    for (let i = 0; i < MAX; i++) await v1Login(user.email, WRONG);
    expect((await v1Login(user.email, user.password)).status).toBe(401);
    const url = `${s.gatewayUrl}/api/v1/internal/lockout/unlock`;
    expect((await call(url, { body: { email: user.email } })).status).toBe(401);
    expect((await call(url, { body: { email: 'not-an-email' }, headers: { 'x-service-key': STACK_SERVICE_KEY } })).status).toBe(400);
    const res = await call(url, {
      body: { email: user.email.toUpperCase(), actorId: 'admin-1' },
      headers: { 'x-service-key': STACK_SERVICE_KEY },
    });
    expect(res).toMatchObject({ status: 200, body: { unlocked: true } });
    expect((await v1Login(user.email, user.password)).status).toBe(200);
    expect((await events(user.userId, 'account_unlocked'))[0]?.context).toMatchObject({ by: 'admin', actorId: 'admin-1', wasLocked: true });
  });

  it('throttles unknown emails the same way (no mail), so a lock tells nothing about existence', async () => {
    const ghost = uniqueEmail('ghost');
    const answers = [];
    for (let i = 0; i < MAX + 1; i++) answers.push(await v1Login(ghost, WRONG));
    expect(answers.map((r) => r.status)).toEqual(Array(MAX + 1).fill(401));
    expect(new Set(answers.map((r) => JSON.stringify(strip(r.body)))).size).toBe(1);
    const row = await s.sql.query<{ locked: boolean }>(
      'select locked_until > now() as locked from auth.sign_in_lockouts where email = $1',
      [ghost],
    );
    expect(row.rows[0].locked).toBe(true);
    expect(s.smtp.messages.some((m) => m.to.includes(ghost))).toBe(false);
  });

  it('counts wrong TOTP and backup codes; a lock refuses even the right code like a wrong one; the lock ends on its own', async () => {
    const user = await registerVerified(s);
    const { c } = await signedIn(user);
    const enabled = await c.twoFactor.enable({ password: user.password });
    const totp = OTPAuth.URI.parse((enabled.data as unknown as { totpURI: string }).totpURI) as OTPAuth.TOTP;
    expect((await c.twoFactor.verifyTotp({ code: totp.generate() })).error).toBeNull();
    const bad = totp.generate() === '000000' ? '111111' : '000000';
    // The enrolment used this step's code, and a code works once: the right code from here on is the next step's.
    const right = totp.generate({ timestamp: Date.now() + 30_000 });

    const start = async () =>
      (await call<{ challenge: string }>(v1('/login'), { body: { email: user.email, password: user.password } })).body.challenge;
    const challenge = await start();
    const second = (code: string, ch = challenge) =>
      call<TokenPair & { error?: string }>(v1('/login/2fa'), { body: { challenge: ch, code } });
    expect((await second(bad)).body.error).toBe('INVALID_TWO_FACTOR_CODE');
    expect((await second('AAAAA-BBBBB')).body.error).toBe('INVALID_TWO_FACTOR_CODE');
    // Third failure on the native path (its own challenge cookie).
    const native = cookieFetch(s.gatewayUrl);
    const n = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: native.fetch });
    expect((await n.signIn.email({ email: user.email, password: user.password })).data).toMatchObject({ twoFactorRedirect: true });
    expect((await n.twoFactor.verifyTotp({ code: bad })).error?.status).toBe(401);

    await s.smtp.waitFor(user.email, (m) => m.subject === 'Your Mana account is temporarily locked');
    const refused = await second(right);
    expect(refused).toMatchObject({ status: 401, body: { error: 'INVALID_TWO_FACTOR_CODE' } });
    const nRefused = await n.twoFactor.verifyTotp({ code: right });
    expect(nRefused.error).toMatchObject({ status: 401, code: 'INVALID_CODE' });
    expect((await v1Login(user.email, user.password)).body.error).toBe('INVALID_CREDENTIALS');
    expect((await events(user.userId, 'two_factor_failed')).map((e) => e.context.reason)).toContain('locked');

    // The lock runs out (simulated by moving it into the past): the same challenge now works.
    await s.sql.query(`update auth.sign_in_lockouts set locked_until = now() - interval '1 second' where email = $1`, [user.email]);
    expect((await second(right)).status).toBe(200);
    expect((await s.sql.query('select 1 from auth.sign_in_lockouts where email = $1', [user.email])).rowCount).toBe(0);
  });

  it('a code that enables two-factor inside a session (a new session, no sign-in to audit) clears the count as before', async () => {
    const user = await registerVerified(s);
    const { c } = await signedIn(user);
    expect((await v1Login(user.email, WRONG)).status).toBe(401);
    const enabled = await c.twoFactor.enable({ password: user.password });
    expect(await failuresOf(user.email)).toBe(1);
    const totp = OTPAuth.URI.parse((enabled.data as unknown as { totpURI: string }).totpURI) as OTPAuth.TOTP;
    expect((await c.twoFactor.verifyTotp({ code: totp.generate() })).error).toBeNull();
    // The security audit takes a completed sign-in's clear into its statement; this one it records as two-factor
    // enabled, and the lockout's settlement after it clears the count.
    expect(await events(user.userId, 'two_factor_enabled')).toHaveLength(1);
    expect(await failuresOf(user.email)).toBe(0);
  });

  it('failures outside the window start a new count; a full sign-in clears the count', async () => {
    const user = await registerVerified(s);
    await v1Login(user.email, WRONG);
    await v1Login(user.email, WRONG);
    await s.sql.query(`update auth.sign_in_lockouts set window_started_at = now() - interval '16 minutes' where email = $1`, [user.email]);
    await v1Login(user.email, WRONG);
    const row = await s.sql.query('select failures, locked_until from auth.sign_in_lockouts where email = $1', [user.email]);
    expect(row.rows[0]).toMatchObject({ failures: 1, locked_until: null });
    expect((await v1Login(user.email, user.password)).status).toBe(200);
    expect((await s.sql.query('select 1 from auth.sign_in_lockouts where email = $1', [user.email])).rowCount).toBe(0);
  });
});
