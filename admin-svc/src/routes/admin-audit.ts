import { Router } from 'express';
import { parseQuery } from '@mana/shared';
import type { AdminDeps } from '../domain/context';
import { auditTrail } from '../domain/audit';
import { auditQuery } from './schemas';

/** `/api/v1/admin/audit` — newest first, keyset pages. */
export function adminAuditRoutes(deps: AdminDeps): Router {
  const router = Router();
  router.get('/', async (req, res) => {
    const q = parseQuery(auditQuery, req.query);
    res.json(
      await auditTrail(deps, {
        targetId: q.targetId,
        actorId: q.actorId,
        action: q.action,
        before: q.cursor ? Number(q.cursor) : undefined,
        limit: q.limit,
      }),
    );
  });
  return router;
}
