import { Router } from 'express';
import { parseBody, parseParams, requireServiceKey } from '@mana/shared';
import { orgOwner, readOwnerSnapshot, userOwner, withWalletWrite } from '../db/scope';
import { userData } from '../domain/data';
import { grantPromo } from '../domain/grants';
import { orInsufficient, spend, spendAlone } from '../domain/spend';
import type { CreditsContext } from './context';
import { internalGrantBody, internalUseBody, userIdParams } from './schemas';

/** `/api/v1/internal/credits/*` (X-Service-Key): backends charging their users, promo grants, the GDPR view. */
export function internalRoutes(ctx: CreditsContext): Router {
  const router = Router();
  router.use(requireServiceKey(ctx.serviceKey));

  router.post('/use', async (req, res) => {
    const body = parseBody(internalUseBody, req.body);
    const owner = userOwner(body.userId);
    const input = {
      owner,
      actor: body.userId,
      amount: body.amount,
      appId: body.appId,
      description: body.description,
      idempotencyKey: body.idempotencyKey,
      metadata: body.metadata,
    };
    const result = orInsufficient(
      await withWalletWrite(ctx.db, owner, (tx) => spend(tx, input, ctx.policy()), {
        atomic: true,
        alone: () => spendAlone(ctx.db, input, ctx.policy()),
      }),
    );
    if (result.replayed) res.set('Idempotency-Replayed', 'true');
    res.status(result.replayed ? 200 : 201).json(result.body);
  });

  router.post('/grants', async (req, res) => {
    const body = parseBody(internalGrantBody, req.body);
    const owner = body.userId !== undefined ? userOwner(body.userId) : orgOwner(body.organizationId!);
    const input = { owner, amount: body.amount, reason: body.reason, idempotencyKey: body.idempotencyKey, expiresAt: body.expiresAt };
    const { grant, created } = await withWalletWrite(ctx.db, owner, (tx) => grantPromo(tx, input, ctx.policy()));
    if (!created) res.set('Idempotency-Replayed', 'true');
    res.status(created ? 201 : 200).json(grant);
  });

  router.get('/users/:id/data', async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    const owner = userOwner(id);
    res.set('Cache-Control', 'no-store').json(await readOwnerSnapshot(ctx.db, owner, (tx) => userData(tx, owner)));
  });

  return router;
}
