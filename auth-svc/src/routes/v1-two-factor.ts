import express, { Router } from 'express';
import { z } from 'zod';
import { AppError, parseBody } from '@mana/shared';
import type { AuthContext } from '../context';
import { betterAuthError } from './auth-errors';
import { forwardedHeaders } from './request-meta';
import { completeSignIn, dropChallenge, openChallenge } from './v1-sign-in';

const secondFactorBody = z.object({
  challenge: z.string().min(32).max(128),
  /** A 6-digit TOTP code, or one of the backup codes. */
  code: z.string().trim().min(6).max(64),
  /** Skip the second factor on this device for 30 days (answer: `trustDeviceToken`). */
  trustDevice: z.boolean().optional(),
});

const invalidChallenge = () => new AppError('INVALID_CHALLENGE', 401, 'The sign-in challenge is invalid or expired; sign in again');
const TOTP = /^\d{6}$/;

/** POST /api/v1/auth/login/2fa: the second step of a login that answered `twoFactorRequired`. */
export function v1TwoFactorRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.use(express.json({ limit: ctx.config.BODY_LIMIT }));

  router.post('/login/2fa', async (req, res) => {
    const body = parseBody(secondFactorBody, req.body);
    const pending = await openChallenge(ctx, req, body.challenge);
    if (!pending) throw invalidChallenge();
    const headers = forwardedHeaders(req);
    headers.set('cookie', pending.cookie);
    const input = { body: { code: body.code, trustDevice: body.trustDevice }, headers, returnHeaders: true } as const;
    let verified;
    try {
      // Better Auth's own verification: its per-challenge attempt limit, backup-code consumption and session.
      verified = TOTP.test(body.code) ? await ctx.auth.api.verifyTOTP(input) : await ctx.auth.api.verifyBackupCode(input);
    } catch (err) {
      const e = betterAuthError(err);
      if (e?.code === 'INVALID_CODE' || e?.code === 'INVALID_BACKUP_CODE') throw new AppError('INVALID_TWO_FACTOR_CODE', 401, 'The code is invalid');
      if (e && e.status < 500) {
        await dropChallenge(ctx, pending.challengeHash);
        throw invalidChallenge();
      }
      throw err;
    }
    await dropChallenge(ctx, pending.challengeHash);
    const sessionToken = verified.response.token;
    if (!sessionToken) throw invalidChallenge();
    res.json(await completeSignIn(ctx, res, sessionToken, pending.device, verified.headers.getSetCookie()));
  });

  return router;
}
