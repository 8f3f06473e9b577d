import type { IncomingMessage, ServerResponse } from 'node:http';
import { applyHeldHeaders } from './forwarding';

const ALLOW_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';
const DEFAULT_ALLOW_HEADERS = 'Authorization, Content-Type, X-Request-Id';
const EXPOSE_HEADERS = 'X-Request-Id, Retry-After';
/** A requested header list is echoed only when it is a plain list of header names. */
const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

/**
 * CORS for the browser apps of CORS_ORIGINS (exact origin match, credentials allowed). Unknown
 * origins get no CORS headers at all, so the browser blocks them; preflights end here and never
 * reach an upstream. The returned function adds its headers to `headers` (name, value, name, value…: the answer's
 * held headers, see holdHeaders), or answers a preflight itself, with the held headers, and then returns true.
 */
export function cors(origins: readonly string[]): (req: IncomingMessage, res: ServerResponse, headers: string[]) => boolean {
  const allowed = new Set(origins);
  return (req, res, headers) => {
    const origin = req.headers.origin;
    const ok = origin !== undefined && allowed.has(origin);
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!preflight) {
      headers.push('Vary', 'Origin');
      if (ok)
        headers.push(
          'Access-Control-Allow-Origin',
          origin,
          'Access-Control-Allow-Credentials',
          'true',
          'Access-Control-Expose-Headers',
          EXPOSE_HEADERS,
        );
      return false;
    }
    applyHeldHeaders(res);
    res.setHeader('Vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
    if (ok) {
      const requested = req.headers['access-control-request-headers'];
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', ALLOW_METHODS);
      res.setHeader('Access-Control-Allow-Headers', requested && HEADER_LIST.test(requested) ? requested : DEFAULT_ALLOW_HEADERS);
      res.setHeader('Access-Control-Max-Age', '600');
    }
    res.statusCode = 204;
    res.setHeader('Content-Length', '0');
    res.end();
    return true;
  };
}
