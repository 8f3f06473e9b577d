import * as OTPAuth from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { registerVerified, type TokenPair } from '../helpers/users';

describe('a TOTP code works once (ASVS 6.5.1)', () => {
  let s: Stack;
  const v1 = (path: string) => `${s.gatewayUrl}/api/v1/auth${path}`;
  /**
   * The code of this step or the next (Better Auth accepts the previous, current and next one; the
   * previous is not used here: it could expire between generation and check).
   */
  const codeAt = (totp: OTPAuth.TOTP, step: 0 | 1) => totp.generate({ timestamp: Date.now() + step * 30_000 });

  beforeAll(async () => {
    s = await startStack();
  });
  afterAll(async () => {
    await s?.close();
  });

  async function enrolled() {
    const user = await registerVerified(s);
    const first = (await call<TokenPair>(v1('/login'), { body: { email: user.email, password: user.password } })).body;
    const enabled = await call<{ totpURI: string }>(v1('/2fa/enable'), { body: { password: user.password }, token: first.accessToken });
    expect(enabled.status).toBe(200);
    const totp = OTPAuth.URI.parse(enabled.body.totpURI) as OTPAuth.TOTP;
    const enrolment = codeAt(totp, 0);
    const verified = await call<{ tokens: TokenPair }>(v1('/2fa/verify'), { body: { code: enrolment }, token: first.accessToken });
    expect(verified.status).toBe(200);
    return { user, totp, enrolment, tokens: verified.body.tokens };
  }

  const signIn = async (user: { email: string; password: string }, code: string) => {
    const started = await call<{ challenge: string }>(v1('/login'), { body: { email: user.email, password: user.password } });
    return call<TokenPair & { error?: string }>(v1('/login/2fa'), { body: { challenge: started.body.challenge, code } });
  };

  it('the code that completed enrolment or a sign-in is refused for the next one; a code of another step passes', async () => {
    const { user, totp, enrolment } = await enrolled();
    expect(await signIn(user, enrolment)).toMatchObject({ status: 401, body: { error: 'INVALID_TWO_FACTOR_CODE' } });
    const next = codeAt(totp, 1);
    expect((await signIn(user, next)).status).toBe(200);
    expect(await signIn(user, next)).toMatchObject({ status: 401, body: { error: 'INVALID_TWO_FACTOR_CODE' } });
  });

  it('a code used for /reauth is refused for a second /reauth and for a sign-in; a wrong guess does not burn the right code', async () => {
    const { user, totp, tokens } = await enrolled();
    const next = codeAt(totp, 1);
    const wrong = next === '000000' ? '111111' : '000000';
    expect((await signIn(user, wrong)).status).toBe(401);
    expect((await call(v1('/reauth'), { body: { code: next }, token: tokens.accessToken })).status).toBe(200);
    expect(await call(v1('/reauth'), { body: { code: next }, token: tokens.accessToken })).toMatchObject({
      status: 401,
      body: { error: 'REAUTH_FAILED' },
    });
    expect((await signIn(user, next)).status).toBe(401);
  });
});
