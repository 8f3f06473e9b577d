import { Router, type Request as ExpressRequest, type Response as ExpressResponse } from 'express';
import { oauthProviderAuthServerMetadata, oauthProviderOpenIdConfigMetadata } from '@better-auth/oauth-provider';
import type { Auth } from '../auth/auth';

/**
 * Discovery documents at the issuer's root (issuer = BASE_URL, the gateway routes `/.well-known/*`
 * here). Better Auth serves its endpoints under /api/auth, so the documents are exported by hand.
 */
export function discoveryRoutes(auth: Auth): Router {
  const router = Router();
  const openid = oauthProviderOpenIdConfigMetadata(auth);
  const oauth = oauthProviderAuthServerMetadata(auth);
  const send = (handler: (r: Request) => Promise<Response>) => async (req: ExpressRequest, res: ExpressResponse) => {
    const answer = await handler(new Request(new URL(req.originalUrl, 'http://auth-svc.internal'), { method: 'GET' }));
    res.status(answer.status);
    answer.headers.forEach((value, key) => res.setHeader(key, value));
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.send(Buffer.from(await answer.arrayBuffer()));
  };
  router.get('/.well-known/openid-configuration', send(openid));
  router.get('/.well-known/oauth-authorization-server', send(oauth));
  return router;
}
