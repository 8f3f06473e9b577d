import { randomUUID } from 'node:crypto';
import type { Express, Request, RequestHandler } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { cors } from './cors';
import type { GatewayMetrics } from './metrics';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const QUIET = new Set(['/healthz', '/readyz', '/metrics']);
const LOG = Symbol('log');

/**
 * The security headers helmet chooses for the gateway's own answers (HSTS, CSP with
 * frame-ancestors 'none', nosniff, referrer policy…). helmet runs once at startup and its choice is
 * replayed on every request: the headers are static, and thirteen nested middlewares per request
 * were a measurable part of the gateway's cost (see docs/BENCHMARKS.md).
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

/** `req.log`: a child logger with the request id, created only when something logs. */
export function installLazyRequestLogger(app: Express, logger: Logger): void {
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request & { [LOG]?: Logger }) {
      return (this[LOG] ??= logger.child({ requestId: this.id }));
    },
  });
}

/**
 * First middleware of every request: request id (taken when well-formed, else made, echoed and
 * forwarded), security headers, CORS (preflights end here), and one 'finish' hook for the metrics
 * and the access log.
 */
export function front(opts: { logger: Logger; metrics: GatewayMetrics; corsOrigins: readonly string[] }): RequestHandler {
  const headers = securityHeaders();
  const answerCors = cors(opts.corsOrigins);
  const accessLog = opts.logger.isLevelEnabled('info');
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    req.id = id;
    req.headers['x-request-id'] = id;
    res.setHeader('X-Request-Id', id);
    for (let i = 0; i < headers.length; i++) res.setHeader(headers[i][0], headers[i][1]);
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = typeof res.locals.route === 'string' ? res.locals.route : 'unmatched';
      opts.metrics.observe(route, res.statusCode, seconds);
      if (accessLog && !QUIET.has(req.path)) {
        const level = res.statusCode >= 500 ? 'error' : 'info';
        req.log[level]({ method: req.method, path: req.path, route, status: res.statusCode, ms: Math.round(seconds * 1e4) / 10 }, 'request');
      }
    });
    if (!answerCors(req, res)) next();
  };
}
