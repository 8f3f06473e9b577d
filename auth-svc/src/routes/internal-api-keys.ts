import express, { Router } from 'express';
import { z } from 'zod';
import { ERRORS, parseBody, acceptedServiceKeys, requireServiceKey, type ApiKeyExchange, type ApiKeyScope } from '@mana/shared';
import { mintApiKeyToken } from '../auth/api-key-tokens';
import type { AuthContext } from '../context';
import { exchangeApiKey } from '../domain/api-keys';

export const exchangeBody = z
  .object({
    key: z.string().min(1).max(200),
    /** The client's address as the gateway saw it (security event "used from a new IP"). */
    ipAddress: z.string().max(64).optional(),
    userAgent: z.string().max(1024).optional(),
  })
  .strict();

/**
 * POST /api/v1/internal/api-keys/exchange (service key): the gateway trades a personal API key for a
 * short-lived access token (sid `ak_<key id>`) and the key's scopes, which it enforces. A wrong, deleted
 * or expired key, or one of a banned user, is 401 TOKEN_INVALID.
 */
export function internalApiKeyRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.post(
    '/api-keys/exchange',
    requireServiceKey(acceptedServiceKeys(ctx.config)),
    express.json({ limit: ctx.config.BODY_LIMIT }),
    async (req, res) => {
      const body = parseBody(exchangeBody, req.body);
      const found = await exchangeApiKey(ctx.db, body.key, { ipAddress: body.ipAddress ?? null, userAgent: body.userAgent ?? null });
      if (found.kind !== 'ok') throw ERRORS.tokenInvalid();
      const scopes = found.key.scopes as ApiKeyScope[];
      const { token, expiresAt } = await mintApiKeyToken(ctx.auth, {
        user: { id: found.user.id, email: found.user.email, role: found.user.role },
        sessionId: found.sessionId,
        scopes,
        keyExpiresAt: found.key.expiresAt,
      });
      const answer: ApiKeyExchange = {
        accessToken: token,
        expiresAt: expiresAt.toISOString(),
        keyId: found.key.id,
        sessionId: found.sessionId,
        scopes,
      };
      res.set('Cache-Control', 'no-store').json(answer);
    },
  );
  return router;
}
