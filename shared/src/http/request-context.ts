import { randomUUID } from 'node:crypto';
import type { Express, RequestHandler } from 'express';
import type { Logger } from 'pino';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id: a well-formed incoming X-Request-Id, else a new one (services and the gateway alike). */
export function requestIdOf(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

const LOG = Symbol('log');

type WithLog = { id: string; [LOG]?: Logger };

/**
 * Takes a well-formed X-Request-Id or makes one, echoes it, gives the request a child logger and writes one access
 * log line when the answer is finished. The child logger (`req.log`, bound to the request id) is made on first use:
 * most requests never log beyond the access line, which the app's logger writes itself with the id in it, and a
 * pino child per request was a measurable share of a small request's cost (docs/BENCHMARKS.md).
 */
export function requestContext(app: Express, logger: Logger, opts: { quietPaths?: string[] } = {}): RequestHandler {
  const quiet = new Set(opts.quietPaths ?? ['/healthz', '/readyz', '/metrics']);
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: WithLog) {
      return (this[LOG] ??= logger.child({ requestId: this.id }));
    },
    set(this: WithLog, value: Logger) {
      this[LOG] = value;
    },
  });
  return (req, res, next) => {
    const id = requestIdOf(req.headers['x-request-id']);
    req.id = id;
    req.headers['x-request-id'] = id;
    res.setHeader('X-Request-Id', id);
    if (!quiet.has(req.path)) {
      const started = process.hrtime.bigint();
      res.once('finish', () => {
        const level = res.statusCode >= 500 ? 'error' : 'info';
        if (!logger.isLevelEnabled(level)) return;
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        logger[level](
          { requestId: id, method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 },
          'request',
        );
      });
    }
    next();
  };
}
