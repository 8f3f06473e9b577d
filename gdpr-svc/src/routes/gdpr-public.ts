import { Router } from 'express';
import { parseParams, parseQuery } from '@mana/shared';
import type { GdprService } from '../domain/gdpr';
import { erasureParams, erasureQuery } from './schemas';

/** `/api/v1/gdpr/*` — public: erasure status by capability token, and the receipt keys. */
export function gdprPublicRoutes({ gdpr }: { gdpr: GdprService }): Router {
  const router = Router();

  router.get('/erasures/:requestId', async (req, res) => {
    const { requestId } = parseParams(erasureParams, req.params);
    const { token } = parseQuery(erasureQuery, req.query);
    res.set('Cache-Control', 'no-store');
    res.set('Referrer-Policy', 'no-referrer');
    res.json(await gdpr.status(requestId, token));
  });

  router.get('/jwks.json', async (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300');
    res.json(await gdpr.jwks());
  });

  return router;
}
