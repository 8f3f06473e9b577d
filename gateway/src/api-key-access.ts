import type { IncomingMessage } from 'node:http';
import { ERRORS } from '@mana/shared';
import { assertScope, keyReachable, scopeDenied } from './api-key-scopes';
import { ApiKeyExchanger } from './api-keys';
import type { GatewayDeps } from './app';
import type { Route } from './routes';

/**
 * Personal API keys on bearer routes, for a request that carries one (`apiKeyOf`; without a key the caller goes
 * on with the per-IP limit and the JWT check). The route must be one a key can reach, the key
 * is exchanged (or its cached exchange reused), refused once its sid is revoked (401 TOKEN_INVALID, the
 * cached exchange dropped), counted against its own rate limit, checked against its scopes (403
 * SCOPE_DENIED), and the request then carries the exchanged access token instead of the key — which the
 * bearer/admin guard verifies like any other token, so services never see a key.
 */
export function apiKeyAccess(
  deps: Pick<GatewayDeps, 'apiKeys' | 'rateLimiter' | 'denylist' | 'metrics'>,
): (req: IncomingMessage, route: Route, ip: string, key: string) => Promise<void> {
  return async (req, route, ip, key) => {
    if (!keyReachable(route.name)) throw scopeDenied(route.name, undefined);
    const digest = ApiKeyExchanger.digest(key);
    let entry = deps.apiKeys.cached(digest, ip);
    if (!entry) {
      // An exchange costs auth-svc a database round trip: it counts against the client IP like any request.
      const limited = await deps.rateLimiter.check(ip, 'general');
      if (limited) {
        deps.metrics.rateLimited.labels('general').inc();
        throw limited;
      }
      const ua = req.headers['user-agent'];
      entry = await deps.apiKeys.exchange(key, digest, { ip, userAgent: typeof ua === 'string' ? ua : undefined });
    }
    if (deps.denylist.has(entry.sid)) {
      deps.apiKeys.drop(digest);
      throw ERRORS.tokenInvalid();
    }
    const limited = await deps.rateLimiter.checkKey(entry.keyId);
    if (limited) {
      deps.metrics.rateLimited.labels('apiKey').inc();
      throw limited;
    }
    assertScope(entry.scopes, route.name, req.method);
    req.headers.authorization = `Bearer ${entry.token}`;
    delete req.headers['x-api-key'];
  };
}
