import type { Express } from 'express';
import { acceptedServiceKeys, createServiceApp, openApiHandler, requireAuth, requireRecentAuth, type Runtime } from '@mana/shared';
import type { Config } from './config';
import type * as tables from './db/schema';
import type { GdprService } from './domain/gdpr';
import { gdprPublicRoutes } from './routes/gdpr-public';
import { internalRoutes } from './routes/internal';
import { meRoutes } from './routes/me';
import { gdprOpenApi } from './routes/openapi';

export interface AppDeps {
  rt: Runtime<typeof tables>;
  config: Config;
  gdpr: GdprService;
}

/** Builds the Express app from its dependencies (no listen). */
export function buildApp({ rt, config, gdpr }: AppDeps): Express {
  const { app, finish } = createServiceApp(rt);
  // Reached directly, the service is as strict as through the gateway: the token is verified again here.
  const recentAuth = requireRecentAuth({
    authUrl: config.AUTH_SVC_URL,
    serviceKey: config.MANA_SERVICE_KEY,
    maxAgeSeconds: config.REAUTH_MAX_AGE_SECONDS,
  });
  app.use('/api/v1/me', requireAuth(rt.verifier), meRoutes({ gdpr, recentAuth }));
  app.use('/api/v1/gdpr', gdprPublicRoutes({ gdpr }));
  app.use('/api/v1/internal/gdpr', internalRoutes({ gdpr, serviceKey: acceptedServiceKeys(config) }));
  // This service's part of the API reference; the gateway merges every part into /openapi.json.
  app.get('/openapi.json', openApiHandler(gdprOpenApi));
  return finish();
}
