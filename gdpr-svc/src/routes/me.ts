import { Router, type RequestHandler } from 'express';
import { parseBody } from '@mana/shared';
import type { GdprService } from '../domain/gdpr';
import { GDPR_ERRORS } from '../errors';
import { callerId, confirmBody } from './schemas';

export interface MeRouteDeps {
  gdpr: GdprService;
  /** The step-up check (a recent sign-in or re-authentication) in front of erasure. */
  recentAuth: RequestHandler;
}

/** `/api/v1/me/*` — mounted behind requireAuth; the user is always the token's `sub`. */
export function meRoutes({ gdpr, recentAuth }: MeRouteDeps): Router {
  const router = Router();

  router.get('/data', async (req, res) => {
    res.json(await gdpr.summary(callerId(req)));
  });

  router.get('/data/export', async (req, res) => {
    const userId = callerId(req);
    const doc = await gdpr.exportDocument(userId);
    const date = doc.exportedAt.slice(0, 10);
    res.set('Content-Disposition', `attachment; filename="mana-data-${encodeURIComponent(userId)}-${date}.json"`);
    res.set('Cache-Control', 'no-store');
    res.type('application/json').send(JSON.stringify(doc, null, 2));
  });

  router.delete('/data', recentAuth, async (req, res) => {
    const userId = callerId(req);
    const body = parseBody(confirmBody, req.body);
    if (body?.confirm !== 'DELETE') throw GDPR_ERRORS.confirmationRequired();
    res.status(202).json(await gdpr.erase(userId, { origin: 'self' }));
  });

  return router;
}
