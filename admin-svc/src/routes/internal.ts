import { Router } from 'express';
import { parseParams, requireServiceKey } from '@mana/shared';
import type { AdminDeps } from '../domain/context';
import { resyncDirectory } from '../domain/resync';
import { adminSection, tierOf } from '../domain/users';
import { userIdParams } from './schemas';

/** `/api/v1/internal/admin/*` (X-Service-Key): tiers for other services, the GDPR section, the resync. */
export function internalRoutes(deps: AdminDeps & { serviceKey: readonly string[] }): Router {
  const router = Router();
  router.use(requireServiceKey(deps.serviceKey));

  router.get('/users/:id/tier', async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    res.json(await tierOf(deps, id));
  });

  // admin-svc's section of the user's data summary (gdpr-svc): access tier and ban state.
  router.get('/users/:id/data', async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    res.json(await adminSection(deps, id));
  });

  router.post('/resync', async (_req, res) => {
    res.json(
      await resyncDirectory(deps.db, deps.auth, {
        defaultTier: deps.tiers[0] ?? 'public',
        actorId: 'service',
        pseudonymSecret: deps.pseudonymSecret,
      }),
    );
  });
  return router;
}
