import express, { Router } from 'express';
import { z } from 'zod';
import { AppError, parseBody } from '@mana/shared';
import { authCookieName, betterAuthError, cookiePair, toV1Error } from '../auth/better-auth-adapter';
import type { AuthContext } from '../context';
import { PASSWORD_MAX_LENGTH, checkPassword } from '../domain/passwords';
import { successorSeal } from '../domain/refresh-seal';
import { findLiveSessionFast, rotateRefreshToken } from '../domain/sessions';
import { CHALLENGE_TTL_SECONDS, startChallenge } from '../domain/two-factor-challenges';
import { findUserById, findUserByEmail } from '../domain/users';
import { registeredUser } from '../domain/views';
import { AUTH_ERRORS } from '../domain/errors';
import { forwardedHeaders, requestMeta } from './request-meta';
import { completeSignIn, pairFor } from './v1-sign-in';

const email = z
  .email()
  .max(254)
  .transform((e) => e.toLowerCase());

export const registerBody = z.object({
  email,
  password: z.string().min(1).max(4096),
  name: z.string().trim().min(1).max(256).optional(),
  locale: z.string().max(35).optional(),
});

export const loginBody = z.object({
  email,
  password: z.string().min(1).max(4096),
  deviceId: z.string().trim().min(1).max(128).optional(),
  deviceName: z.string().trim().min(1).max(128).optional(),
  /** From an earlier second factor with `trustDevice` (clients without a cookie jar). */
  trustDeviceToken: z
    .string()
    .max(1024)
    .regex(/^[A-Za-z0-9%._~!-]+$/)
    .optional(),
});

export const refreshBody = z.object({ refreshToken: z.string().min(16).max(256) });
export const validateBody = z.object({ token: z.string().min(1).max(8192) });

/** /api/v1/auth register, login, refresh, validate: the ecosystem's simple token API on top of Better Auth. */
export function v1AuthRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.use(express.json({ limit: ctx.config.BODY_LIMIT }));
  const successors = successorSeal(ctx.config.BETTER_AUTH_SECRET);

  router.post('/register', async (req, res) => {
    const body = parseBody(registerBody, req.body);
    const violation = checkPassword(body.password, ctx.config.PASSWORD_MIN_LENGTH);
    if (violation) throw AUTH_ERRORS.passwordRule(violation);
    let result;
    try {
      result = await ctx.auth.api.signUpEmail({
        body: {
          email: body.email,
          password: body.password,
          name: body.name ?? body.email.split('@')[0] ?? body.email,
          locale: body.locale,
        },
        headers: forwardedHeaders(req),
      });
    } catch (err) {
      throw toV1Error(err);
    }
    ctx.kickOutbox();
    // For an email that is already registered Better Auth answers with a look-alike user of other keys: both
    // answers are built from one fixed shape (no enumeration).
    const row = await findUserById(ctx.db, result.user.id);
    res.status(201).json({ user: registeredUser(row ?? result.user, { email: body.email, name: result.user.name, locale: body.locale }) });
  });

  router.post('/login', async (req, res) => {
    const body = parseBody(loginBody, req.body);
    if ([...body.password].length > PASSWORD_MAX_LENGTH) throw AUTH_ERRORS.invalidCredentials();
    const headers = forwardedHeaders(req);
    if (body.trustDeviceToken) headers.set('cookie', `${await authCookieName(ctx.auth, 'trust_device')}=${body.trustDeviceToken}`);
    let signIn;
    try {
      // Better Auth's own sign-in: the same password check, lockout, second factor, session row and
      // signed SSO cookie as /api/auth.
      signIn = await ctx.auth.api.signInEmail({ body: { email: body.email, password: body.password }, headers, returnHeaders: true });
    } catch (err) {
      const e = betterAuthError(err);
      if (e?.code === 'ACCOUNT_BANNED') throw AUTH_ERRORS.accountBanned(e.message);
      if (e?.code === 'EMAIL_NOT_VERIFIED') throw AUTH_ERRORS.emailNotVerified();
      if (e && e.status < 500) throw AUTH_ERRORS.invalidCredentials();
      throw err;
    }
    const device = { deviceId: body.deviceId, deviceName: body.deviceName };
    const setCookies = signIn.headers.getSetCookie();
    const response: unknown = signIn.response;
    if (typeof response === 'object' && response !== null && 'twoFactorRedirect' in response) {
      const pending = cookiePair(setCookies, await authCookieName(ctx.auth, 'two_factor'));
      const user = await findUserByEmail(ctx.db, body.email);
      if (!pending || !user) throw AUTH_ERRORS.twoFactorStartFailed();
      res.json({
        twoFactorRequired: true,
        challenge: await startChallenge(ctx.db, {
          userId: user.id,
          twoFactorCookie: pending,
          device,
          userAgent: req.get('user-agent') ?? null,
          ipAddress: req.ip ?? null,
        }),
        expiresIn: CHALLENGE_TTL_SECONDS,
      });
      return;
    }
    res.json(await completeSignIn(ctx, res, signIn.response.token, device, setCookies));
  });

  router.post('/refresh', async (req, res) => {
    const body = parseBody(refreshBody, req.body);
    const result = await rotateRefreshToken(ctx.db, successors, body.refreshToken, requestMeta(req));
    if (result.kind === 'invalid') throw AUTH_ERRORS.invalidRefreshToken();
    if (result.kind === 'ended') {
      ctx.kickOutbox();
      throw AUTH_ERRORS.invalidRefreshToken();
    }
    if (result.kind === 'reused') {
      ctx.kickOutbox();
      throw AUTH_ERRORS.refreshTokenReused();
    }
    res.json(await pairFor(ctx, result.subject, result.refreshToken));
  });

  router.post('/validate', async (req, res) => {
    const body = parseBody(validateBody, req.body);
    try {
      const payload = await ctx.verifier.verify(body.token);
      if (!(await findLiveSessionFast(ctx.db, payload.sid, payload.sub))) {
        res.json({ valid: false, error: 'TOKEN_REVOKED' });
        return;
      }
      res.json({ valid: true, payload });
    } catch (err) {
      if (err instanceof AppError && err.status < 500) {
        res.json({ valid: false, error: err.code });
        return;
      }
      throw err;
    }
  });

  return router;
}
