import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, Request, RequestHandler } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { cors } from './cors';
import type { GatewayMetrics } from './metrics';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const QUIET = new Set(['/healthz', '/readyz', '/metrics']);
const ROUTE = Symbol('route');
const EXCHANGE = Symbol('exchange');

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
  const headers: Array<[string, string]> = [];
  const res = {
    setHeader: (name: string, value: string) => void headers.push([name, String(value)]),
    removeHeader: () => undefined,
  };
  const mw = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { 'default-src': ["'none'"], 'frame-ancestors': ["'none'"], 'base-uri': ["'none'"], 'form-action': ["'self'"] },
    },
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
  });
  let done = false;
  mw({} as never, res as never, () => (done = true));
  if (!done) throw new Error('helmet did not finish synchronously');
  return headers;
}

export type Begin = (req: IncomingMessage, res: ServerResponse, path: string) => Exchange | undefined;

/**
 * What every request goes through first, proxied or not: request id (taken when well-formed, else
 * made; echoed and forwarded), security headers, CORS, and one 'finish' hook for the metrics and
 * the access log. Returns undefined when it answered the request itself (a CORS preflight).
 */
export function createBegin(opts: { logger: Logger; metrics: GatewayMetrics; corsOrigins: readonly string[] }): Begin {
  const headers = securityHeaders();
  const answerCors = cors(opts.corsOrigins);
  const accessLog = opts.logger.isLevelEnabled('info');
  return (req, res, path) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    req.headers['x-request-id'] = id;
    res.setHeader('X-Request-Id', id);
    for (let i = 0; i < headers.length; i++) res.setHeader(headers[i][0], headers[i][1]);
    let child: Logger | undefined;
    const log = () => (child ??= opts.logger.child({ requestId: id }));
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (res as Tagged)[ROUTE] ?? 'unmatched';
      opts.metrics.observe(route, res.statusCode, seconds);
      if (accessLog && !QUIET.has(path)) {
        const level = res.statusCode >= 500 ? 'error' : 'info';
        log()[level]({ method: req.method, path, route, status: res.statusCode, ms: Math.round(seconds * 1e4) / 10 }, 'request');
      }
    });
    return answerCors(req, res) ? undefined : { id, log };
  };
}

/** `begin` as the first Express middleware, with `req.id` and a lazy `req.log`. */
export function frontMiddleware(app: Express, begin: Begin): RequestHandler {
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request & { [EXCHANGE]?: Exchange }) {
      return this[EXCHANGE]?.log() ?? (app.get('gateway logger') as Logger);
    },
  });
  return (req, res, next) => {
    const ex = begin(req, res, req.path);
    if (!ex) return;
    req.id = ex.id;
    (req as Request & { [EXCHANGE]?: Exchange })[EXCHANGE] = ex;
    next();
  };
}
