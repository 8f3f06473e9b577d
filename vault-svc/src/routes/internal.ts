import { Router } from 'express';
import { parseParams, requireServiceKey } from '@mana/shared';
import { withUserScope, type VaultDb } from '../db/scope';
import { vaultMetadata } from '../domain/vault';
import { userIdParams } from './schemas';

/** `/api/v1/internal/vault/*` (X-Service-Key): vault metadata for the GDPR view, never key material. */
export function internalRoutes(deps: { db: VaultDb; serviceKey: readonly string[] }): Router {
  const router = Router();
  router.use(requireServiceKey(deps.serviceKey));
  router.get('/users/:id', async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    res.json(await withUserScope(deps.db, id, (tx) => vaultMetadata(tx, id)));
  });
  return router;
}
