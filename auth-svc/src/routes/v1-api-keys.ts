import express, { Router } from 'express';
import { z } from 'zod';
import { DEFAULT_API_KEY_SCOPES, ERRORS, apiKeyScope, apiKeySessionId, parseBody, parseParams } from '@mana/shared';
import type { AuthContext } from '../context';
import { createApiKey, deleteApiKey, listApiKeys } from '../domain/api-keys';
import { AUTH_ERRORS } from '../domain/errors';
import { awaitRevocationsRelayed } from '../events/await-relayed';
import { requestMeta } from './request-meta';
import { requireRecentSession } from './require-recent-auth';
import { liveSession, requireSession } from './require-session';

// eslint-disable-next-line no-control-regex -- control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

export const createBody = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .refine((s) => !CONTROL.test(s), 'must not contain control characters'),
    expiresInDays: z.number().int().min(1).max(3650).optional(),
    scopes: z.array(apiKeyScope).min(1).max(20).optional(),
  })
  .strict();

export const keyParams = z.object({ id: z.uuid() });

/**
 * /api/v1/auth/api-keys (bearer): the caller's personal API keys. Creating one is a sensitive operation
 * (step-up: a recent sign-in or /reauth); listing never shows a key, deleting revokes it everywhere.
 */
export function apiKeyRoutes(ctx: AuthContext): Router {
  const router = Router();
  const auth = requireSession(ctx);

  router.post('/api-keys', express.json({ limit: ctx.config.BODY_LIMIT }), auth, requireRecentSession(ctx), async (req, res) => {
    const body = parseBody(createBody, req.body);
    const { user } = liveSession(req);
    const scopes = body.scopes ?? DEFAULT_API_KEY_SCOPES;
    if (scopes.includes('admin') && user.role !== 'admin')
      throw ERRORS.forbidden('Only administrators can create a key with the admin scope');
    const created = await createApiKey(ctx.db, user.id, { name: body.name, scopes, expiresInDays: body.expiresInDays }, requestMeta(req));
    res.status(201).set('Cache-Control', 'no-store').json(created);
  });

  router.get('/api-keys', auth, async (req, res) => {
    const { user } = liveSession(req);
    res.json({ apiKeys: await listApiKeys(ctx.db, user.id) });
  });

  router.delete('/api-keys/:id', auth, async (req, res) => {
    const { id } = parseParams(keyParams, req.params);
    const { user } = liveSession(req);
    if (!(await deleteApiKey(ctx.db, user.id, id, requestMeta(req)))) throw AUTH_ERRORS.apiKeyNotFound();
    // Answer once session.revoked.v1 reached the broker: the key is refused everywhere from then on.
    await awaitRevocationsRelayed(ctx, [apiKeySessionId(id)]);
    res.json({ success: true });
  });

  return router;
}
