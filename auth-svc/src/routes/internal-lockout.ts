import express, { Router } from 'express';
import { z } from 'zod';
import { parseBody, acceptedServiceKeys, requireServiceKey } from '@mana/shared';
import type { AuthContext } from '../context';
import { unlock } from '../domain/lockout';
import { recordSecurityEvent } from '../domain/security-events';
import { findUserByEmail } from '../domain/users';
import { requestMeta } from './request-meta';

export const unlockBody = z.object({
  email: z.email().max(254),
  /** The admin who asked (admin-svc passes the caller's user id), for the audit log. */
  actorId: z.string().min(1).max(128).optional(),
});

/** POST /api/v1/internal/lockout/unlock (service key): an admin lifts a sign-in lockout. */
export function internalLockoutRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.use(requireServiceKey(acceptedServiceKeys(ctx.config)));
  router.post('/lockout/unlock', express.json({ limit: ctx.config.BODY_LIMIT }), async (req, res) => {
    const body = parseBody(unlockBody, req.body);
    const wasLocked = await unlock(ctx.db, body.email);
    const user = await findUserByEmail(ctx.db, body.email);
    await recordSecurityEvent(ctx.db, {
      userId: user?.id ?? null,
      type: 'account_unlocked',
      meta: requestMeta(req),
      context: { by: 'admin', actorId: body.actorId ?? null, wasLocked },
    });
    res.json({ unlocked: wasLocked });
  });
  return router;
}
