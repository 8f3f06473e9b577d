import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { helmetHeaders, requestIdOf } from '@mana/shared';
import { cors } from './cors';
import { applyHeldHeaders, holdHeaders } from './forwarding';
import type { GatewayMetrics } from './metrics';

const QUIET = new Set(['/healthz', '/readyz', '/metrics']);
const ROUTE = Symbol('route');
const EXCHANGE = Symbol('exchange');
const REQUEST_EXCHANGE = Symbol('request exchange');

/** One request as the gateway sees it: its id and a child logger made only when something logs. */
export interface Exchange {
  id: string;
  log: () => Logger;
}

type Tagged = ServerResponse & { [ROUTE]?: string };

/** Names the request in metrics and the access log (a route-table name, or `gateway`). */
export function setRoute(res: ServerResponse, name: string): void {
  (res as Tagged)[ROUTE] = name;
}

/**
 * The security headers helmet chooses for the gateway (HSTS, CSP with frame-ancestors 'none',
 * nosniff, referrer policy…). helmet runs once at startup and its choice is replayed on every
 * request: the headers are static, and thirteen nested middlewares per request were a measurable
 * part of the gateway's cost (docs/BENCHMARKS.md). Upstream answers may override them.
 */
export function securityHeaders(): Array<[string, string]> {
  return helmetHeaders({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { 'default-src': ["'none'"], 'frame-ancestors': ["'none'"], 'base-uri': ["'none'"], 'form-action': ["'self'"] },
    },
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
  });
}

export type Begin = (req: IncomingMessage, res: ServerResponse, path: string) => Exchange | undefined;

/** A request's id, its lazy child logger, and what its 'finish' hook needs. */
class FrontExchange implements Exchange {
  private child: Logger | undefined;
  readonly started = performance.now();
  constructor(
    readonly id: string,
    readonly path: string,
    readonly method: string | undefined,
    private readonly logger: Logger,
  ) {}
  readonly log = (): Logger => (this.child ??= this.logger.child({ requestId: this.id }));
}

type Finishing = ServerResponse & { [EXCHANGE]?: FrontExchange };

/**
 * What every request goes through first, proxied or not: request id (taken when well-formed, else
 * made; echoed and forwarded), security headers, CORS, and one 'finish' hook for the metrics and
 * the access log. Returns undefined when it answered the request itself (a CORS preflight).
 *
 * The answer's own headers (request id, security headers, CORS) are held, not set (`holdHeaders`): a proxied answer
 * writes them with the upstream's in one `writeHead` (setHeader per header was a measurable share of the gateway's
 * cost, docs/BENCHMARKS.md); every other answer sets them first (`applyHeldHeaders`, sendError, the Express app).
 */
export function createBegin(opts: { logger: Logger; metrics: GatewayMetrics; corsOrigins: readonly string[] }): Begin {
  const security = securityHeaders().flat();
  const answerCors = cors(opts.corsOrigins);
  const accessLog = opts.logger.isLevelEnabled('info');
  // One listener for every request (no closure per request): `this` is the response.
  function onFinish(this: Finishing) {
    const ex = this[EXCHANGE];
    if (!ex) return;
    const seconds = (performance.now() - ex.started) / 1000;
    const route = (this as Tagged)[ROUTE] ?? 'unmatched';
    opts.metrics.observe(route, this.statusCode, seconds);
    if (accessLog && !QUIET.has(ex.path)) {
      const level = this.statusCode >= 500 ? 'error' : 'info';
      // The app's logger with the id in the line: no child logger per request (`ex.log()` is for what else logs).
      opts.logger[level](
        { requestId: ex.id, method: ex.method, path: ex.path, route, status: this.statusCode, ms: Math.round(seconds * 1e4) / 10 },
        'request',
      );
    }
  }
  return (req, res, path) => {
    const id = requestIdOf(req.headers['x-request-id']);
    req.headers['x-request-id'] = id;
    const ex = new FrontExchange(id, path, req.method, opts.logger);
    (res as Finishing)[EXCHANGE] = ex;
    res.on('finish', onFinish);
    const headers = ['X-Request-Id', id, ...security];
    holdHeaders(res, headers);
    return answerCors(req, res, headers) ? undefined : ex;
  };
}

/** `begin` as the first Express middleware, with `req.id` and a lazy `req.log`. */
export function frontMiddleware(app: Express, begin: Begin): RequestHandler {
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request & { [REQUEST_EXCHANGE]?: Exchange }) {
      return this[REQUEST_EXCHANGE]?.log() ?? (app.get('gateway logger') as Logger);
    },
  });
  return (req, res, next) => {
    const ex = begin(req, res, req.path);
    if (!ex) return;
    applyHeldHeaders(res);
    req.id = ex.id;
    (req as Request & { [REQUEST_EXCHANGE]?: Exchange })[REQUEST_EXCHANGE] = ex;
    next();
  };
}
