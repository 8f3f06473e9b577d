import type { Express, Request, RequestHandler } from 'express';

const ROUTE = Symbol('route');
const TEMPLATE = Symbol('routeTemplate');
const BASE = Symbol('baseUrl');
const DEEPEST = Symbol('deepestBaseUrl');

interface Tracked {
  [ROUTE]?: unknown;
  [TEMPLATE]?: string;
  [BASE]?: string;
  [DEEPEST]?: string;
}

/**
 * Makes every request of `app` remember the route template it was dispatched to (`/api/v1/me/data/:id`),
 * with the mount path it had at that moment: Express restores `req.baseUrl` when an error leaves a
 * router, so reading `req.baseUrl + req.route.path` on 'finish' would lose the prefix. Accessors on the
 * app's request prototype: no per-request allocation.
 */
export function trackRouteTemplates(app: Express): void {
  Object.defineProperty(app.request, 'route', {
    configurable: true,
    get(this: Tracked) {
      return this[ROUTE];
    },
    set(this: Tracked & { baseUrl?: string }, value: { path?: string | string[] | RegExp } | undefined) {
      this[ROUTE] = value;
      if (value) this[TEMPLATE] = (this.baseUrl ?? '') + templateOf(value.path);
    },
  });
  Object.defineProperty(app.request, 'baseUrl', {
    configurable: true,
    get(this: Tracked) {
      return this[BASE] ?? '';
    },
    set(this: Tracked, value: string) {
      this[BASE] = value;
      if (value && value.length > (this[DEEPEST]?.length ?? 0)) this[DEEPEST] = value;
    },
  });
}

/** A route's path as written: a string, a list of them, or a regular expression's source. */
function templateOf(path: string | string[] | RegExp | undefined): string {
  if (path === undefined) return '';
  if (typeof path === 'string') return path;
  if (Array.isArray(path)) return path.join('|');
  return path.source;
}

/**
 * The label of a finished request: its route template, else the deepest mount path it entered
 * (`/api/v1/me/*`: refused by a router's middleware before any route), else `unmatched`. Never the raw URL.
 */
export function routeLabel(req: Request): string {
  const r = req as unknown as Tracked;
  if (r[TEMPLATE] !== undefined) return r[TEMPLATE];
  if (r[DEEPEST]) return `${r[DEEPEST]}/*`;
  return 'unmatched';
}

export interface HttpObserver {
  observeRequest(route: string, method: string, status: number, seconds: number): void;
}

/** Counts every request but the probes and the scrape itself, once the response is finished. */
export function httpMetricsMiddleware(metrics: HttpObserver, quietPaths: readonly string[]): RequestHandler {
  const quiet = new Set(quietPaths);
  return (req, res, next) => {
    if (quiet.has(req.path)) {
      next();
      return;
    }
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      metrics.observeRequest(routeLabel(req), req.method, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };
}
