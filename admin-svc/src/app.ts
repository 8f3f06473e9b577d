import type { Express } from 'express';
import {
  acceptedServiceKeys,
  createServiceApp,
  openApiHandler,
  requireAuth,
  requireRecentAuth,
  requireRole,
  type Runtime,
} from '@mana/shared';
import type * as tables from './db/schema';
import type { Config } from './config';
import type { AdminDeps } from './domain/context';
import { adminAuditRoutes } from './routes/admin-audit';
import { adminUserRoutes } from './routes/admin-users';
import { internalRoutes } from './routes/internal';
import { adminOpenApi } from './routes/openapi';

export interface AppDeps {
  rt: Runtime<typeof tables>;
  config: Config;
  deps: AdminDeps;
}

/** Builds the Express app from its dependencies (no listen). */
export function buildApp({ rt, config, deps }: AppDeps): Express {
  const { app, finish } = createServiceApp(rt);
  // Reached directly, the service is as strict as through the gateway: the token and its role are checked again.
  const admin = [requireAuth(rt.verifier), requireRole('admin')];
  // Step-up for the writes a stolen admin token must not be enough for (erase, role, ban, tier).
  const recentAuth = requireRecentAuth({
    authUrl: config.AUTH_SVC_URL,
    serviceKey: config.MANA_SERVICE_KEY,
    maxAgeSeconds: config.REAUTH_MAX_AGE_SECONDS,
  });
  app.use('/api/v1/admin/users', ...admin, adminUserRoutes(deps, recentAuth));
  app.use('/api/v1/admin/audit', ...admin, adminAuditRoutes(deps));
  app.use('/api/v1/admin', ...admin);
  app.use('/api/v1/internal/admin', internalRoutes({ ...deps, serviceKey: acceptedServiceKeys(config) }));
  // This service's part of the API reference; the gateway merges every part into /openapi.json.
  app.get('/openapi.json', openApiHandler(adminOpenApi));
  return finish();
}
