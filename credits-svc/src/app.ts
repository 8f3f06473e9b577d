import express, { type Express } from 'express';
import type { ErrorRequestHandler } from 'express';
import { AppError, createServiceApp, errorBody, openApiHandler, requireAuth, type Runtime } from '@mana/shared';
import type * as tables from './db/schema';
import type { Config } from './config';
import { creditsRoutes } from './routes/credits';
import type { CreditsContext } from './routes/context';
import { internalRoutes } from './routes/internal';
import { creditsOpenApi } from './routes/openapi';
import { webhookRoutes } from './routes/webhook';

export interface AppDeps {
  rt: Runtime<typeof tables>;
  config: Config;
  ctx: CreditsContext;
}

/** 402 carries the available balance at the top of the error body too (the seed's clients read `balance`). */
const insufficientCredits: ErrorRequestHandler = (err, req, res, next) => {
  if (!(err instanceof AppError) || err.code !== 'INSUFFICIENT_CREDITS') {
    next(err);
    return;
  }
  res.status(err.status).json({ ...errorBody(err, req.id), balance: (err.details as { balance: number }).balance });
};

/** Builds the Express app from its dependencies (no listen). */
export function buildApp({ rt, config, ctx }: AppDeps): Express {
  // JSON parsing is mounted after the webhook: Stripe's signature is over the raw bytes.
  const { app, finish } = createServiceApp(rt, { json: false });
  app.use('/api/v1/credits/webhook', webhookRoutes(ctx, config.BODY_LIMIT));
  app.use(express.json({ limit: config.BODY_LIMIT }));
  // Reached directly, the service is as strict as through the gateway: the token is verified again here.
  app.use('/api/v1/credits', requireAuth(rt.verifier), creditsRoutes(ctx));
  app.use('/api/v1/internal/credits', internalRoutes(ctx));
  // This service's part of the API reference; the gateway merges every part into /openapi.json.
  app.get('/openapi.json', openApiHandler(creditsOpenApi));
  app.use(insufficientCredits);
  return finish();
}
