import type { Express } from 'express';
import { createServiceApp, requireAuth, type Runtime } from '@mana/shared';
import type * as tables from './db/schema';

export interface AppDeps {
  rt: Runtime<typeof tables>;
}

/** Builds the Express app from its dependencies (no listen). Its routes arrive with the credits-svc issue. */
export function buildApp({ rt }: AppDeps): Express {
  const { app, finish } = createServiceApp(rt);
  // Reached directly, the service is as strict as through the gateway: the token is verified again here.
  app.use('/api/v1/credits', requireAuth(rt.verifier));
  return finish();
}
