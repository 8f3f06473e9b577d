import type { Express } from 'express';
import { acceptedServiceKeys, createServiceApp, openApiHandler, requireAuth, requireRecentAuth, type Runtime } from '@mana/shared';
import type * as tables from './db/schema';
import type { Config } from './config';
import type { FetchAuditBatcher } from './db/fetch-audit';
import { vaultDb } from './db/scope';
import type { Keyring } from './domain/kek';
import { pseudonymFor } from './domain/pseudonym';
import { encryptionVaultRoutes } from './routes/encryption-vault';
import { internalRoutes } from './routes/internal';
import { vaultOpenApi } from './routes/openapi';

export interface AppDeps {
  rt: Runtime<typeof tables>;
  config: Config;
  keyring: Keyring;
  fetchAudit: FetchAuditBatcher;
}

/** Builds the Express app from its dependencies (no listen). */
export function buildApp({ rt, config, keyring, fetchAudit }: AppDeps): Express {
  const { app, finish } = createServiceApp(rt);
  const db = vaultDb(rt.database);
  // Services verify the bearer token again: reached directly, vault-svc is as strict as through the gateway.
  app.use(
    '/api/v1/me/encryption-vault',
    requireAuth(rt.verifier),
    encryptionVaultRoutes({
      db,
      logger: rt.logger,
      keyring,
      fetchAudit,
      pseudonymOf: (userId) => pseudonymFor(config.VAULT_PSEUDONYM_SECRET, userId),
      // Key changes that cannot be undone need a recent sign-in or re-authentication (step-up).
      stepUp: requireRecentAuth({
        authUrl: config.AUTH_SVC_URL,
        serviceKey: config.MANA_SERVICE_KEY,
        maxAgeSeconds: config.REAUTH_MAX_AGE_SECONDS,
      }),
    }),
  );
  app.use('/api/v1/internal/vault', internalRoutes({ db, serviceKey: acceptedServiceKeys(config) }));
  // This service's part of the API reference; the gateway merges every part into /openapi.json.
  app.get('/openapi.json', openApiHandler(vaultOpenApi));
  return finish();
}
