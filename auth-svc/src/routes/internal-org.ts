import { Router } from 'express';
import { z } from 'zod';
import { parseParams, acceptedServiceKeys, requireServiceKey } from '@mana/shared';
import type { AuthContext } from '../context';
import { memberRole } from '../domain/organizations';

export const memberParams = z.object({ orgId: z.string().min(1).max(128), userId: z.string().min(1).max(128) });

/** GET /api/v1/internal/org/:orgId/member/:userId (service key). */
export function internalOrgRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.use(requireServiceKey(acceptedServiceKeys(ctx.config)));
  // credits-svc asks whether a user may act for an organization.
  router.get('/org/:orgId/member/:userId', async (req, res) => {
    const { orgId, userId } = parseParams(memberParams, req.params);
    const role = await memberRole(ctx.db, orgId, userId);
    res.json(role !== undefined ? { member: true, role } : { member: false, role: null });
  });
  return router;
}
