import type { RequestHandler } from 'express';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * The headers helmet sets for `options`, computed once. With static options (no CSP nonce, nothing per request)
 * helmet's choice is the same on every response, so it is replayed instead of running its thirteen nested
 * middlewares per request (a measurable share of a small request's cost, docs/BENCHMARKS.md).
 */
export function helmetHeaders(options?: Readonly<HelmetOptions>): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  const res = {
    setHeader: (name: string, value: unknown) => void headers.push([name, String(value)]),
    removeHeader: () => undefined,
  };
  let done = false;
  helmet(options)({} as never, res as never, () => (done = true));
  if (!done) throw new Error('helmet did not finish synchronously');
  return headers;
}

/** helmet's headers (`helmetHeaders`) on every response, set before the routes run: a route may still override one. */
export function securityHeaders(options?: Readonly<HelmetOptions>): RequestHandler {
  const headers = helmetHeaders(options);
  return (_req, res, next) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    next();
  };
}
