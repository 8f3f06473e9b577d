import { Router } from 'express';
import { z } from 'zod';
import { parseParams, acceptedServiceKeys, requireServiceKey } from '@mana/shared';
import type { AuthContext } from '../context';
import { AUTH_ERRORS } from '../domain/errors';
import { liveRevocations } from '../domain/revocations';
import { userData } from '../domain/user-data';

export const userParams = z.object({ id: z.string().min(1).max(128) });

/** /api/v1/internal (X-Service-Key): what other services may ask auth-svc. */
export function internalRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.use(requireServiceKey(acceptedServiceKeys(ctx.config)));

  // The gateway's denylist: revocations whose last access token has not expired yet.
  router.get('/sessions/revoked', async (_req, res) => {
    res.json({ revocations: await liveRevocations(ctx.db) });
  });

  // Everything auth-svc holds about a user, for the GDPR view (never a secret).
  router.get('/users/:id/data', async (req, res) => {
    const { id } = parseParams(userParams, req.params);
    const data = await userData(ctx.db, id);
    if (!data) throw AUTH_ERRORS.userNotFound();
    res.json(data);
  });

  return router;
}
