import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import {
  AppError,
  ERRORS,
  errorHandler,
  notFoundHandler,
  readinessHandler,
  bearerToken,
  requireServiceKey,
  metricsHandler,
  type AccessClaims,
  type AppState,
  type JwtVerifier,
  type ReadinessCheck,
} from '@mana/shared';
import type { RevokedSessions } from '@mana/shared';
import { apiKeyAccess } from './api-key-access';
import { apiKeyOf, dropApiKey, type ApiKeyExchanger } from './api-keys';
import { clientIp, forwardedHost, forwardedProto, sendError, type TrustFn } from './forwarding';
import { createBegin, frontMiddleware, setRoute, type Begin, type Exchange } from './front';
import type { GatewayMetrics } from './metrics';
import { proxyRequest, type ProxyOptions } from './proxy';
import { mountReference, type ApiReference } from './reference';
import type { RateLimiter } from './rate-limit';
import { isAmbiguousPath, matchRoute, rateTierOf, type Access, type RateTier, type Route, type UpstreamName } from './routes';
import type { UpstreamPool } from './upstream';

export interface GatewayDeps {
  logger: Logger;
  state: AppState;
  /** undefined = verification switched off (benchmarks, never production). */
  verifier: JwtVerifier | undefined;
  denylist: RevokedSessions;
  rateLimiter: RateLimiter;
  /** Personal API keys on bearer routes (exchanged at auth-svc for access tokens). */
  apiKeys: ApiKeyExchanger;
  pools: Record<UpstreamName, UpstreamPool>;
  metrics: GatewayMetrics;
  readiness: Record<string, ReadinessCheck>;
  /** The merged OpenAPI document behind /openapi.json and /docs. */
  reference: ApiReference;
  serviceKey: string;
  /** Keys `service` routes accept (MANA_SERVICE_KEY and, during a rotation, MANA_SERVICE_KEYS_ACCEPTED). */
  acceptedServiceKeys?: readonly string[];
  corsOrigins: readonly string[];
  bodyLimit: number;
  upstreamTimeoutMs: number;
  trustProxy: string;
  /** When set, /metrics wants `Authorization: Bearer <token>`. */
  metricsToken?: string;
}

const GATEWAY_PATHS = new Set(['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs']);

/** Runs an Express middleware as a promise: resolves when it calls next(), rejects when it throws. */
function run(mw: RequestHandler, req: Request, res: Response): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what the middleware passed to next() goes to the error handler unchanged
    const done = (err?: unknown) => (err ? reject(err) : resolve());
    Promise.resolve(mw(req, res, done as NextFunction)).catch(reject);
  });
}

/**
 * The gateway's request listener. Proxied routes take a lean path on plain node:http (Express 5's
 * per-request work cost more CPU than the whole proxying, see docs/BENCHMARKS.md); everything
 * else — /healthz, /readyz, /metrics, refusals of unknown or non-canonical paths — is the Express
 * app below. Both share the same first step (request id, security headers, CORS, metrics).
 */
export function buildGateway(deps: GatewayDeps): RequestListener {
  const begin = createBegin({ logger: deps.logger, metrics: deps.metrics, corsOrigins: deps.corsOrigins });
  const app = buildApp(deps, begin);
  const trust = app.get('trust proxy fn') as TrustFn;
  const proxyOptions: ProxyOptions = {
    timeoutMs: deps.upstreamTimeoutMs,
    bodyLimit: deps.bodyLimit,
    trustPeer: (addr) => trust(addr, 0),
    onUpstreamError: (pool, instance, kind) => deps.metrics.upstreamError(pool.name, instance.url, kind),
  };
  const guards = accessGuards(deps);
  const withApiKey = apiKeyAccess(deps);

  const proxy = (req: IncomingMessage, res: ServerResponse, route: Route, ex: Exchange) => {
    const fwd = { requestId: ex.id, proto: forwardedProto(req, trust), host: forwardedHost(req, trust) };
    proxyRequest(req, res, deps.pools[route.upstream], proxyOptions, fwd);
  };
  const guardThenProxy = (req: IncomingMessage, res: ServerResponse, route: Route, ex: Exchange): void | Promise<void> => {
    const guarded = guards(route, req as Request, res as Response);
    if (guarded) return guarded.then(() => proxy(req, res, route, ex));
    proxy(req, res, route, ex);
  };
  const refuse = (res: ServerResponse, tier: RateTier, limited: AppError, ex: Exchange) => {
    deps.metrics.rateLimited.labels(tier).inc();
    sendError(res, limited, ex.id);
  };

  /**
   * Rate limit, access check, proxy. Synchronous as long as every step can decide at once (the common case: a
   * locally counted hit, a cached token), so such a request pays no promise; a step that must wait returns one.
   */
  const forward = (req: IncomingMessage, res: ServerResponse, route: Route, path: string, ex: Exchange): void | Promise<void> => {
    const ip = clientIp(req, trust);
    // A request with a personal API key counts against the key's own limit (and its IP's when the key must
    // be exchanged); it then carries the exchanged access token and is checked like any bearer request.
    const key = route.access === 'bearer' || route.access === 'admin' ? apiKeyOf(req) : undefined;
    if (key !== undefined) return withApiKey(req, route, ip, key).then(() => guardThenProxy(req, res, route, ex));
    dropApiKey(req);
    const tier = rateTierOf(path);
    const limited = deps.rateLimiter.check(ip, tier);
    if (limited instanceof Promise)
      return limited.then((refusal) => (refusal ? refuse(res, tier, refusal, ex) : guardThenProxy(req, res, route, ex)));
    if (limited) return refuse(res, tier, limited, ex);
    return guardThenProxy(req, res, route, ex);
  };

  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const route = isAmbiguousPath(path) ? undefined : matchRoute(path);
    if (!route) {
      void app(req, res);
      return;
    }
    setRoute(res, route.name);
    const ex = begin(req, res, path);
    if (!ex) return;
    const failed = (err: unknown) => sendError(res, err, ex.id, ex.log);
    try {
      forward(req, res, route, path, ex)?.catch(failed);
    } catch (err) {
      failed(err);
    }
  };
}

/** The Express app for the gateway's own endpoints and for every refusal that is not a proxy. */
export function buildApp(deps: GatewayDeps, begin: Begin): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', deps.trustProxy);
  app.set('gateway logger', deps.logger);
  app.use(frontMiddleware(app, begin));
  app.use((req, _res, next) => {
    if (isAmbiguousPath(req.path)) throw new AppError('BAD_PATH', 400, 'The request path is not in canonical form');
    next();
  });
  mountOwnEndpoints(app, deps);
  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}

/**
 * Who may pass, per access level of the route table: throws (or rejects with) the AppError to answer with. A bearer
 * token already verified (cached) is decided synchronously: no promise on the common path.
 */
function accessGuards(deps: GatewayDeps): (route: Route, req: Request, res: Response) => void | Promise<void> {
  const serviceKey = requireServiceKey(deps.acceptedServiceKeys ?? deps.serviceKey);
  const verifier = deps.verifier;
  // The same checks as the shared requireAuth middleware, inlined (see docs/BENCHMARKS.md).
  const refused = (v: JwtVerifier, err: unknown): never => {
    deps.metrics.jwtFailure(v.reasonOf(err));
    throw err;
  };
  const accept = (req: Request, v: JwtVerifier, token: string, claims: AccessClaims) => {
    if (deps.denylist.has(claims.sid)) refused(v, ERRORS.tokenRevoked());
    req.auth = claims;
    req.bearerToken = token;
  };
  const bearer = (req: Request): void | Promise<void> => {
    if (!verifier) return;
    const token = bearerToken(req.headers.authorization);
    if (!token) return refused(verifier, ERRORS.tokenMissing());
    const cached = verifier.peek?.(token);
    if (cached) return accept(req, verifier, token, cached);
    return verifier.verify(token).then(
      (claims) => accept(req, verifier, token, claims),
      (err: unknown) => refused(verifier, err),
    );
  };
  const adminOnly = (req: Request) => {
    if (verifier && req.auth?.role !== 'admin') throw ERRORS.forbidden('This route is for administrators');
  };
  const checks: Record<Access, (req: Request, res: Response) => void | Promise<void>> = {
    public: () => undefined,
    service: (req, res) => run(serviceKey, req, res),
    bearer,
    admin: (req) => {
      const pending = bearer(req);
      if (pending) return pending.then(() => adminOnly(req));
      adminOnly(req);
    },
  };
  return (route, req, res) => checks[route.access](req, res);
}

function mountOwnEndpoints(app: Express, deps: GatewayDeps): void {
  app.get('/healthz', (_req, res) => {
    setRoute(res, 'gateway');
    res.json({ status: 'ok' });
  });

  app.get(
    '/readyz',
    readinessHandler(deps.readiness, deps.state, (res) => setRoute(res, 'gateway')),
  );

  app.get(
    '/metrics',
    (_req, res, next) => {
      setRoute(res, 'gateway');
      next();
    },
    metricsHandler(deps.metrics.registry, deps.metricsToken),
  );

  mountReference(app, deps.reference);

  // Anything else on a gateway path with another method.
  app.all([...GATEWAY_PATHS], () => {
    throw new AppError('METHOD_NOT_ALLOWED', 405, 'Method not allowed');
  });
}
