import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { parseBody } from '@mana/shared';
import { betterAuthError, sessionTokenOf, toV1Error } from '../auth/better-auth-adapter';
import type { AuthContext } from '../context';
import { AUTH_ERRORS } from '../domain/errors';
import { turnOffTwoFactor } from '../domain/two-factor';
import { dropChallenge, openChallenge } from '../domain/two-factor-challenges';
import { forwardedHeaders, requestMeta } from './request-meta';
import { requireRecentSession } from './require-recent-auth';
import { liveSession, requireSession } from './require-session';
import { sessionCookieHeaders } from './session-cookie';
import { completeSignIn } from './v1-sign-in';

export const secondFactorBody = z.object({
  challenge: z.string().min(32).max(128),
  /** A 6-digit TOTP code, or one of the backup codes. */
  code: z.string().trim().min(6).max(64),
  /** Skip the second factor on this device for 30 days (answer: `trustDeviceToken`). */
  trustDevice: z.boolean().optional(),
});

export const passwordBody = z.object({ password: z.string().min(1).max(4096) });
export const codeBody = z.object({ code: z.string().trim().min(6).max(64) });
export const disableBody = z.union([passwordBody, codeBody]);

const TOTP = /^\d{6}$/;

/** POST /api/v1/auth/login/2fa: the second step of a login that answered `twoFactorRequired`. */
export function v1TwoFactorRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.use(express.json({ limit: ctx.config.BODY_LIMIT }));

  router.post('/login/2fa', async (req, res) => {
    const body = parseBody(secondFactorBody, req.body);
    const pending = await openChallenge(ctx.db, body.challenge, req.get('user-agent') ?? null);
    if (!pending) throw AUTH_ERRORS.invalidChallenge();
    const headers = forwardedHeaders(req);
    headers.set('cookie', pending.cookie);
    const input = { body: { code: body.code, trustDevice: body.trustDevice }, headers, returnHeaders: true } as const;
    let verified;
    try {
      // Better Auth's own verification: its per-challenge attempt limit, backup-code consumption and session.
      verified = TOTP.test(body.code) ? await ctx.auth.api.verifyTOTP(input) : await ctx.auth.api.verifyBackupCode(input);
    } catch (err) {
      const e = betterAuthError(err);
      if (e?.code === 'INVALID_CODE' || e?.code === 'INVALID_BACKUP_CODE') throw AUTH_ERRORS.invalidTwoFactorCode();
      if (e && e.status < 500) {
        await dropChallenge(ctx.db, pending.challengeHash);
        throw AUTH_ERRORS.invalidChallenge();
      }
      throw err;
    }
    // Whether this drop or a parallel one removed the row does not matter: exactly one completion got here. Better
    // Auth consumed the pending sign-in the challenge seals (a DELETE … RETURNING of its verification row, and of its
    // attempt count before the code check) before it created the session; a parallel completion found it gone and
    // was refused above (INVALID_CHALLENGE). This row only maps the challenge to that cookie.
    await dropChallenge(ctx.db, pending.challengeHash);
    const sessionToken = verified.response.token;
    if (!sessionToken) throw AUTH_ERRORS.invalidChallenge();
    res.json(await completeSignIn(ctx, res, sessionToken, pending.device, verified.headers.getSetCookie()));
  });

  // Bearer clients manage two-factor through the same Better Auth endpoints, presenting their
  // session as Better Auth's signed session cookie.
  const auth = requireSession(ctx);
  const asSession = async (req: Request) => {
    const { session } = liveSession(req);
    return { headers: await sessionCookieHeaders(ctx, req, session), session };
  };
  // Enabling and disabling make Better Auth replace the session; the caller gets a pair for the new one.
  const successor = async (req: Request, res: express.Response, setCookies: string[]) => {
    const { session } = liveSession(req);
    const token = await sessionTokenOf(ctx.auth, setCookies);
    if (!token || token === session.token) return undefined;
    return completeSignIn(ctx, res, token, { deviceId: session.deviceId, deviceName: session.deviceName }, setCookies);
  };

  router.post('/2fa/enable', auth, async (req, res) => {
    const body = parseBody(passwordBody, req.body);
    const { headers } = await asSession(req);
    try {
      res.json(await ctx.auth.api.enableTwoFactor({ body: { password: body.password }, headers }));
    } catch (err) {
      throw toV1Error(err);
    }
  });

  router.post('/2fa/verify', auth, async (req, res) => {
    const body = parseBody(codeBody, req.body);
    const { headers } = await asSession(req);
    let verified;
    try {
      verified = await ctx.auth.api.verifyTOTP({ body: { code: body.code }, headers, returnHeaders: true });
    } catch (err) {
      throw toV1Error(err);
    }
    const tokens = await successor(req, res, verified.headers.getSetCookie());
    res.json({ status: true, ...(tokens ? { tokens } : {}) });
  });

  router.post('/2fa/backup-codes', auth, async (req, res) => {
    const body = parseBody(passwordBody, req.body);
    const { headers } = await asSession(req);
    try {
      res.json(await ctx.auth.api.generateBackupCodes({ body: { password: body.password }, headers }));
    } catch (err) {
      throw toV1Error(err);
    }
  });

  // With the password (Better Auth's endpoint) or with a current TOTP or backup code.
  router.post('/2fa/disable', auth, requireRecentSession(ctx), async (req, res) => {
    const body = parseBody(disableBody, req.body);
    const { headers, session } = await asSession(req);
    try {
      if ('password' in body) {
        const done = await ctx.auth.api.disableTwoFactor({ body: { password: body.password }, headers, returnHeaders: true });
        const tokens = await successor(req, res, done.headers.getSetCookie());
        res.json({ status: true, ...(tokens ? { tokens } : {}) });
        return;
      }
      const input = { body: { code: body.code, disableSession: true }, headers };
      if (TOTP.test(body.code)) await ctx.auth.api.verifyTOTP({ body: { code: body.code }, headers });
      else await ctx.auth.api.verifyBackupCode(input);
    } catch (err) {
      throw toV1Error(err);
    }
    await turnOffTwoFactor(ctx.db, session.userId, requestMeta(req));
    res.json({ status: true });
  });

  return router;
}
