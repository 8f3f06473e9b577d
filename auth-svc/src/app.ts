import type { Express } from 'express';
import { toNodeHandler } from 'better-auth/node';
import { createServiceApp, openApiHandler } from '@mana/shared';
import { currentJwks } from './auth/tokens';
import type { AuthContext } from './context';
import { discoveryRoutes } from './oidc/discovery';
import { accountPages } from './pages/account-pages';
import { magicLinkPages } from './pages/magic-link-pages';
import { passkeyPages } from './pages/passkey-pages';
import { hostedPages } from './pages/router';
import { internalRoutes } from './routes/internal';
import { internalAuthTimeRoutes } from './routes/internal-auth-time';
import { internalLockoutRoutes } from './routes/internal-lockout';
import { internalOrgRoutes } from './routes/internal-org';
import { internalAdminRoutes } from './routes/internal-admin';
import { internalApiKeyRoutes } from './routes/internal-api-keys';
import { apiKeyRoutes } from './routes/v1-api-keys';
import { v1AuthRoutes } from './routes/v1-auth';
import { v1ReauthRoutes } from './routes/v1-reauth';
import { securityEventRoutes } from './routes/v1-security-events';
import { sessionRoutes } from './routes/v1-sessions';
import { v1TwoFactorRoutes } from './routes/v1-two-factor';
import { authOpenApi } from './routes/openapi';

/**
 * Builds the Express app from its dependencies (no listen). Every router is mounted here and only
 * here: the gateway's route table → this file → `routes/<file>.ts` (or `pages/`, `oidc/`).
 */
export function buildApp(ctx: AuthContext): Express {
  const { rt } = ctx;
  // Better Auth reads the raw request stream: each router parses its own bodies.
  const { app, finish } = createServiceApp(rt, { json: false });

  app.all('/api/auth/*splat', toNodeHandler(ctx.auth));

  // The JWKS at its well-known address too (the gateway routes /.well-known/* here).
  app.get('/.well-known/jwks.json', async (_req, res) => {
    res.set('Cache-Control', 'public, max-age=60').json(await currentJwks(ctx.auth));
  });
  // OIDC discovery (/.well-known/openid-configuration, /.well-known/oauth-authorization-server).
  app.use(discoveryRoutes(ctx.auth));

  // Express walks its routes in order: the session check, the most frequent request, is matched first.
  app.use('/api/v1/auth', sessionRoutes(ctx));
  app.use('/api/v1/auth', v1AuthRoutes(ctx));
  app.use('/api/v1/auth', v1TwoFactorRoutes(ctx));
  app.use('/api/v1/auth', securityEventRoutes(ctx));
  app.use('/api/v1/auth', v1ReauthRoutes(ctx));
  app.use('/api/v1/auth', apiKeyRoutes(ctx));

  // Each internal router checks X-Service-Key itself.
  app.use('/api/v1/internal', internalRoutes(ctx));
  app.use('/api/v1/internal', internalOrgRoutes(ctx));
  app.use('/api/v1/internal', internalLockoutRoutes(ctx));
  app.use('/api/v1/internal', internalAuthTimeRoutes(ctx));
  app.use('/api/v1/internal', internalAdminRoutes(ctx));
  app.use('/api/v1/internal', internalApiKeyRoutes(ctx));

  // The hosted login, consent, magic-link, sign-up and reset pages the OIDC provider sends browsers to.
  app.use('/auth', hostedPages(ctx));
  app.use('/auth', magicLinkPages(ctx));
  app.use('/auth', accountPages(ctx));
  app.use('/auth', passkeyPages(ctx));
  // This service's part of the API reference; the gateway merges every part into /openapi.json.
  app.get(
    '/openapi.json',
    openApiHandler(() => authOpenApi(ctx.auth)),
  );
  return finish();
}
