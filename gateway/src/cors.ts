import type { Request, Response } from 'express';

const ALLOW_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';
const DEFAULT_ALLOW_HEADERS = 'Authorization, Content-Type, X-Request-Id';
const EXPOSE_HEADERS = 'X-Request-Id, Retry-After';
/** A requested header list is echoed only when it is a plain list of header names. */
const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

/**
 * CORS for the browser apps of CORS_ORIGINS (exact origin match, credentials allowed). Unknown
 * origins get no CORS headers at all, so the browser blocks them; preflights end here and never
 * reach an upstream.
 */
export function cors(origins: readonly string[]): (req: Request, res: Response) => boolean {
  const allowed = new Set(origins);
  /** Returns true when it answered the request (a preflight). */
  return (req, res) => {
    const origin = req.headers.origin;
    res.setHeader('Vary', 'Origin');
    const ok = origin !== undefined && allowed.has(origin);
    if (ok) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!preflight) {
      if (ok) res.setHeader('Access-Control-Expose-Headers', EXPOSE_HEADERS);
      return false;
    }
    if (ok) {
      const requested = req.headers['access-control-request-headers'];
      res.setHeader('Access-Control-Allow-Methods', ALLOW_METHODS);
      res.setHeader(
        'Access-Control-Allow-Headers',
        requested && HEADER_LIST.test(requested) ? requested : DEFAULT_ALLOW_HEADERS,
      );
      res.setHeader('Access-Control-Max-Age', '600');
      res.append('Vary', ['Access-Control-Request-Method', 'Access-Control-Request-Headers']);
    }
    res.setHeader('Content-Length', '0');
    res.status(204).end();
    return true;
  };
}
