import type { RequestHandler } from 'express';
import { secretsEqual } from '../auth/middleware';
import { ERRORS } from '../errors';

/** What /metrics exposes: a service's metrics or the gateway's prom-client registry. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/**
 * GET /metrics, for every service and the gateway. With a token, only `Authorization: Bearer <token>` gets the
 * exposition (401 TOKEN_INVALID otherwise, compared in constant time); production refuses to start without one (config).
 */
export function metricsHandler(metrics: MetricsSource, token: string | undefined): RequestHandler {
  return async (req, res) => {
    if (token) {
      const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
      if (!secretsEqual(given, token)) throw ERRORS.tokenInvalid();
    }
    const body = await metrics.metrics();
    res.setHeader('Content-Type', metrics.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(body);
  };
}
