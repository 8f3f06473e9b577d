import { Router } from 'express';
import type { AuthContext } from '../context';
import { hostedPages } from '../pages/router';
import { discoveryRoutes } from './discovery';

/** Everything the OIDC provider serves outside Better Auth's /api/auth handler. */
export function oidcRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.use(discoveryRoutes(ctx.auth));
  router.use('/auth', hostedPages(ctx));
  return router;
}
