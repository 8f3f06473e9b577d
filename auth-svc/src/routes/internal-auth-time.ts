import { Router } from 'express';
import { z } from 'zod';
import { parseParams, acceptedServiceKeys, requireServiceKey } from '@mana/shared';
import type { AuthContext } from '../context';
import { AUTH_ERRORS } from '../domain/errors';
import { sessionAuthTime } from '../domain/reauth';

export const sessionParams = z.object({ sid: z.string().min(1).max(128) });

/**
 * GET /api/v1/internal/sessions/:sid/auth-time (service key): when the session last authenticated
 * (sign-in or re-authentication), for other services' step-up checks (`requireRecentAuth`).
 */
export function internalAuthTimeRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.get('/sessions/:sid/auth-time', requireServiceKey(acceptedServiceKeys(ctx.config)), async (req, res) => {
    const { sid } = parseParams(sessionParams, req.params);
    const found = await sessionAuthTime(ctx.db, sid);
    if (!found) throw AUTH_ERRORS.sessionNotFound('No such live session');
    res.json({ sessionId: found.sessionId, userId: found.userId, authenticatedAt: found.authenticatedAt.toISOString() });
  });
  return router;
}
