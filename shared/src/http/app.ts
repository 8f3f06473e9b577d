import express, { type Express, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import { errorHandler, notFoundHandler } from '../errors';
import { httpMetricsMiddleware, metricsHandler, trackRouteTemplates, type ServiceMetrics } from '../metrics';
import { requestContext } from './request-context';
import { securityHeaders } from './security-headers';
import './types';

/**
 * Throws when its dependency is unreachable (not ready); resolves `'degraded'` when the instance serves on
 * without it (still ready, the reason shown in `checks`).
 */
export type ReadinessCheck = () => Promise<void | 'degraded'>;

export interface AppState {
  shuttingDown: boolean;
}

/** /readyz: 503 while shutting down, else 200 only when no named check fails (`degraded` ones included). */
export function readinessHandler(
  readiness: Record<string, ReadinessCheck>,
  state: AppState,
  before?: (res: Response) => void,
): RequestHandler {
  return async (req, res) => {
    before?.(res);
    if (state.shuttingDown) {
      res.status(503).json({ status: 'shutting_down' });
      return;
    }
    const checks: Record<string, 'ok' | 'degraded' | 'fail'> = {};
    await Promise.all(
      Object.entries(readiness).map(async ([name, check]) => {
        try {
          checks[name] = (await check()) === 'degraded' ? 'degraded' : 'ok';
        } catch (err) {
          req.log.warn({ check: name, err: (err as Error).message }, 'readiness check failed');
          checks[name] = 'fail';
        }
      }),
    );
    const ok = Object.values(checks).every((c) => c !== 'fail');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not_ready', checks });
  };
}

export interface CreateAppOptions {
  logger: Logger;
  /** Named checks for /readyz; each throws when its dependency is unreachable. */
  readiness?: Record<string, ReadinessCheck>;
  bodyLimit?: string;
  /** Whether to parse JSON bodies for every route (Better Auth wants the raw stream on its routes). */
  json?: boolean;
  state?: AppState;
  /** Number of proxies in front (the gateway): X-Forwarded-For is trusted that far. */
  trustProxy?: number | boolean | string;
  /** Counts requests by route template and serves GET /metrics (guarded by `metricsToken` when set). */
  metrics?: ServiceMetrics;
  metricsToken?: string;
}

const PROBES = ['/healthz', '/readyz', '/metrics'];

/** The standard service shell: helmet, request id + logging, JSON bodies, /healthz, /readyz. */
export function createApp(opts: CreateAppOptions): { app: Express; state: AppState; finish: () => Express } {
  const app = express();
  const state = opts.state ?? { shuttingDown: false };
  app.disable('x-powered-by');
  app.set('trust proxy', opts.trustProxy ?? 'loopback, linklocal, uniquelocal');
  app.set('etag', false);
  if (opts.metrics) {
    trackRouteTemplates(app);
    app.use(httpMetricsMiddleware(opts.metrics, PROBES));
  }
  app.use(requestContext(app, opts.logger));
  app.use(securityHeaders());
  if (opts.json !== false) app.use(express.json({ limit: opts.bodyLimit ?? '100kb' }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', readinessHandler(opts.readiness ?? {}, state));

  if (opts.metrics) app.get('/metrics', metricsHandler(opts.metrics, opts.metricsToken));

  const finish = () => {
    app.use(notFoundHandler);
    app.use(errorHandler);
    return app;
  };
  return { app, state, finish };
}
