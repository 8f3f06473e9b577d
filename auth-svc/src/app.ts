import type { Express } from 'express';
import { toNodeHandler } from 'better-auth/node';
import { createApp, standardReadiness } from '@mana/shared';
import { currentJwks } from './auth/tokens';
import type { AuthContext } from './context';
import { oidcRoutes } from './oidc/routes';
import { internalRoutes } from './routes/internal';
import { internalAuthTimeRoutes } from './routes/internal-auth-time';
import { internalAdminRoutes } from './routes/internal-admin';
import { v1AuthRoutes } from './routes/v1-auth';
import { v1ReauthRoutes } from './routes/v1-reauth';

/** Builds the Express app from its dependencies (no listen). */
export function buildApp(ctx: AuthContext): Express {
  const { rt, config } = ctx;
  const { app, finish } = createApp({
    logger: rt.logger,
    readiness: standardReadiness(rt),
    bodyLimit: config.BODY_LIMIT,
    state: rt.state,
    // Better Auth reads the raw request stream: JSON parsing is added per router below.
    json: false,
  });

  app.all('/api/auth/*splat', toNodeHandler(ctx.auth));

  // The JWKS at its well-known address too (the gateway routes /.well-known/* here).
  app.get('/.well-known/jwks.json', async (_req, res) => {
    res.set('Cache-Control', 'public, max-age=60').json(await currentJwks(ctx.auth));
  });

  app.use('/api/v1/auth', v1AuthRoutes(ctx));
  app.use('/api/v1/auth', v1ReauthRoutes(ctx));
  app.use('/api/v1/internal', internalRoutes(ctx));
  app.use('/api/v1/internal', internalAuthTimeRoutes(ctx));
  app.use('/api/v1/internal', internalAdminRoutes(ctx));
  // OIDC discovery and the hosted login/consent pages (/.well-known/openid-configuration, /auth/*).
  app.use(oidcRoutes(ctx));
  return finish();
}
