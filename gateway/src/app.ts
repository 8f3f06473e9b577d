import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import {
  AppError,
  ERRORS,
  errorHandler,
  notFoundHandler,
  requireAuth,
  requireServiceKey,
  secretsEqual,
  type AppState,
  type JwtVerifier,
  type ReadinessCheck,
} from '@mana/shared';
import type { RevokedSessions } from './denylist';
import { front, installLazyRequestLogger } from './front';
import type { GatewayMetrics } from './metrics';
import { proxyRequest, sendError, type ProxyOptions } from './proxy';
import type { RateLimiter } from './rate-limit';
import { isAmbiguousPath, matchRoute, rateTierOf, type Access, type Route, type UpstreamName } from './routes';
import type { UpstreamPool } from './upstream';

export interface GatewayDeps {
  logger: Logger;
  state: AppState;
  /** undefined = verification switched off (benchmarks, never production). */
  verifier: JwtVerifier | undefined;
  denylist: RevokedSessions;
  rateLimiter: RateLimiter;
  pools: Record<UpstreamName, UpstreamPool>;
  metrics: GatewayMetrics;
  readiness: Record<string, ReadinessCheck>;
  serviceKey: string;
  corsOrigins: readonly string[];
  bodyLimit: number;
  upstreamTimeoutMs: number;
  trustProxy: string;
  /** When set, /metrics wants `Authorization: Bearer <token>`. */
  metricsToken?: string;
}

const GATEWAY_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** Runs an Express middleware as a promise: resolves when it calls next(), rejects when it throws. */
function run(mw: RequestHandler, req: Request, res: Response): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: unknown) => (err ? reject(err) : resolve());
    Promise.resolve(mw(req, res, done as NextFunction)).catch(reject);
  });
}

export function buildApp(deps: GatewayDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', deps.trustProxy);
  const trust = app.get('trust proxy fn') as (addr: string, i: number) => boolean;

  installLazyRequestLogger(app, deps.logger);
  app.use(front({ logger: deps.logger, metrics: deps.metrics, corsOrigins: deps.corsOrigins }));

  const proxyOptions: ProxyOptions = {
    timeoutMs: deps.upstreamTimeoutMs,
    bodyLimit: deps.bodyLimit,
    trustPeer: (addr) => trust(addr, 0),
    onUpstreamError: (pool, instance, kind) => deps.metrics.upstreamError(pool.name, instance.url, kind),
  };
  const guards = accessGuards(deps);

  app.use(async (req, res, next) => {
    const path = req.path;
    if (isAmbiguousPath(path)) throw new AppError('BAD_PATH', 400, 'The request path is not in canonical form');
    const route = matchRoute(path);
    if (!route) {
      next();
      return;
    }
    res.locals.route = route.name;
    const tier = rateTierOf(path);
    const limited = await deps.rateLimiter.check(req.ip ?? req.socket.remoteAddress ?? 'unknown', tier);
    if (limited) {
      deps.metrics.rateLimited.labels(tier).inc();
      sendError(req, res, limited);
      return;
    }
    await guards(route, req, res);
    proxyRequest(req, res, deps.pools[route.upstream], proxyOptions);
  });
  mountOwnEndpoints(app, deps);

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}

/** Who may pass, per access level of the route table. Throws the AppError to answer with. */
function accessGuards(deps: GatewayDeps): (route: Route, req: Request, res: Response) => Promise<void> {
  const serviceKey = requireServiceKey(deps.serviceKey);
  const verifier = deps.verifier;
  const bearer = verifier ? requireAuth(verifier, { isRevoked: (sid) => deps.denylist.has(sid) }) : undefined;
  const checks: Record<Access, (req: Request, res: Response) => Promise<void>> = {
    public: async () => undefined,
    service: (req, res) => run(serviceKey, req, res),
    bearer: async (req, res) => {
      if (!bearer || !verifier) return;
      try {
        await run(bearer, req, res);
      } catch (err) {
        deps.metrics.jwtFailure(verifier.reasonOf(err));
        throw err;
      }
    },
    admin: async (req, res) => {
      await checks.bearer(req, res);
      if (verifier && req.auth?.role !== 'admin') throw ERRORS.forbidden('This route is for administrators');
    },
  };
  return (route, req, res) => checks[route.access](req, res);
}

function mountOwnEndpoints(app: Express, deps: GatewayDeps): void {
  app.get('/healthz', (_req, res) => {
    res.locals.route = 'gateway';
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (req, res) => {
    res.locals.route = 'gateway';
    if (deps.state.shuttingDown) {
      res.status(503).json({ status: 'shutting_down' });
      return;
    }
    const checks: Record<string, 'ok' | 'fail'> = {};
    await Promise.all(
      Object.entries(deps.readiness).map(async ([name, check]) => {
        try {
          await check();
          checks[name] = 'ok';
        } catch (err) {
          req.log.warn({ check: name, err: (err as Error).message }, 'readiness check failed');
          checks[name] = 'fail';
        }
      }),
    );
    const ok = Object.values(checks).every((c) => c === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not_ready', checks });
  });

  app.get('/metrics', async (req, res) => {
    res.locals.route = 'gateway';
    if (deps.metricsToken) {
      const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
      if (!secretsEqual(given, deps.metricsToken)) throw ERRORS.tokenInvalid();
    }
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  // Anything else on a gateway path with another method.
  app.all([...GATEWAY_PATHS], () => {
    throw new AppError('METHOD_NOT_ALLOWED', 405, 'Method not allowed');
  });
}
