import type { Response } from 'express';
import { authCookieName, cookieValue } from '../auth/better-auth-adapter';
import { mintAccessToken } from '../auth/tokens';
import type { AuthContext } from '../context';
import { AUTH_ERRORS } from '../domain/errors';
import { startSessionFamily, type TokenSubject } from '../domain/sessions';
import { ACCESS_TOKEN_TTL_SECONDS } from '../domain/tokens';
import type { Device } from '../domain/two-factor-challenges';
import { publicUser } from '../domain/views';

export async function pairFor(ctx: AuthContext, subject: TokenSubject, refreshToken: string) {
  const { user, sessionId, signingKeyId } = subject;
  const accessToken = await mintAccessToken(ctx.auth, { user, session: { id: sessionId } }, signingKeyId);
  return { user: publicUser(user), accessToken, refreshToken, expiresIn: ACCESS_TOKEN_TTL_SECONDS, tokenType: 'Bearer' as const };
}

/**
 * Turns the session Better Auth just made (password sign-in, or its second factor) into the
 * /api/v1 answer: device fields, a refresh-token family, the token pair, and the SSO cookie.
 */
export async function completeSignIn(ctx: AuthContext, res: Response, sessionToken: string, device: Device, setCookies: string[]) {
  const started = await startSessionFamily(ctx.db, sessionToken, device);
  if (!started) throw AUTH_ERRORS.sessionNotCreated();
  const pair = await pairFor(ctx, started, started.refreshToken);
  for (const cookie of setCookies) res.append('Set-Cookie', cookie);
  // Clients without a cookie jar keep "trust this device" as a token and send it with the next login.
  const trusted = cookieValue(setCookies, await authCookieName(ctx.auth, 'trust_device'));
  return trusted ? { ...pair, trustDeviceToken: trusted } : pair;
}
