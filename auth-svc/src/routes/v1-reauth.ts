import express, { Router } from 'express';
import { z } from 'zod';
import { parseBody } from '@mana/shared';
import type { AuthContext } from '../context';
import { AUTH_ERRORS } from '../domain/errors';
import { recordReauth } from '../domain/reauth';
import { betterAuthError } from '../auth/better-auth-adapter';
import { requestMeta } from './request-meta';
import { liveSession, requireSession } from './require-session';
import { sessionCookieHeaders } from './session-cookie';

export const reauthBody = z.union([
  z.object({ password: z.string().min(1).max(4096) }).strict(),
  /** A 6-digit TOTP code or one of the backup codes (accounts with two-factor on). */
  z.object({ code: z.string().trim().min(6).max(64) }).strict(),
]);

const TOTP = /^\d{6}$/;
/** Better Auth's answers to a wrong password, code or backup code (the lockout answers a locked account the same way). */
const WRONG_SECRET = new Set(['INVALID_PASSWORD', 'INVALID_CODE', 'INVALID_BACKUP_CODE']);

/**
 * POST /api/v1/auth/reauth (bearer): step-up authentication. The password or a second-factor code is
 * checked by Better Auth's own endpoints, so a wrong one counts toward the per-account lockout like a
 * failed sign-in (lockout plugin) and a backup code is used up.
 */
export function v1ReauthRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.post('/reauth', express.json({ limit: ctx.config.BODY_LIMIT }), requireSession(ctx), async (req, res) => {
    const body = parseBody(reauthBody, req.body);
    const { session, user } = liveSession(req);
    const headers = await sessionCookieHeaders(ctx, req, session);
    let method: 'password' | 'totp' | 'backup_code';
    try {
      if ('password' in body) {
        method = 'password';
        await ctx.auth.api.verifyPassword({ body: { password: body.password }, headers });
      } else {
        if (user.twoFactorEnabled !== true) throw AUTH_ERRORS.twoFactorNotEnabled();
        method = TOTP.test(body.code) ? 'totp' : 'backup_code';
        if (method === 'totp') await ctx.auth.api.verifyTOTP({ body: { code: body.code }, headers });
        // disableSession: the caller keeps its session (no successor cookie).
        else await ctx.auth.api.verifyBackupCode({ body: { code: body.code, disableSession: true }, headers });
      }
    } catch (err) {
      const e = betterAuthError(err);
      if (e && WRONG_SECRET.has(e.code)) throw AUTH_ERRORS.reauthFailed();
      throw err;
    }
    const at = await recordReauth(ctx.db, session.id, session.userId, requestMeta(req), method);
    res.json({ reauthenticatedAt: at.toISOString() });
  });
  return router;
}
