import type { Express } from 'express';
import { createApp, requireAuth, standardReadiness, type Runtime } from '@mana/shared';
import type * as tables from './db/schema';
import type { Config } from './config';

export interface AppDeps {
  rt: Runtime<typeof tables>;
  config: Config;
}

/** Builds the Express app from its dependencies (no listen). */
export function buildApp({ rt, config }: AppDeps): Express {
  const { app, finish } = createApp({
    logger: rt.logger,
    readiness: standardReadiness(rt),
    bodyLimit: config.BODY_LIMIT,
    state: rt.state,
  });
  void requireAuth;
  return finish();
}
