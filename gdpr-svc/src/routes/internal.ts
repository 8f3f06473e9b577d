import { Router } from 'express';
import { parseBody, parseParams, requireServiceKey } from '@mana/shared';
import type { GdprService } from '../domain/gdpr';
import { adminErasureBody, userIdParams } from './schemas';

/** `/api/v1/internal/gdpr/*` (X-Service-Key): admin-svc starts erasures and reads the summary. */
export function internalRoutes({ gdpr, serviceKey }: { gdpr: GdprService; serviceKey: readonly string[] }): Router {
  const router = Router();
  router.use(requireServiceKey(serviceKey));

  router.post('/erasures', async (req, res) => {
    const { userId, actorId, reason } = parseBody(adminErasureBody, req.body);
    res.status(202).json(await gdpr.erase(userId, { origin: 'admin', actorId, reason }));
  });

  router.get('/users/:id/data', async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    res.json(await gdpr.summary(id));
  });

  return router;
}
