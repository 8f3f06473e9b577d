import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ERRORS } from '../errors';
import { bearerToken, type JwtVerifier } from './jwt';

export interface RequireAuthOptions {
  /** Refuses tokens of ended sessions (the gateway's denylist). */
  isRevoked?: (sid: string) => boolean;
}

/** Verifies the bearer JWT and puts its claims on `req.auth`. */
export function requireAuth(verifier: JwtVerifier, opts: RequireAuthOptions = {}): RequestHandler {
  return async (req, _res, next) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) throw ERRORS.tokenMissing();
    const claims = await verifier.verify(token);
    if (opts.isRevoked?.(claims.sid)) throw ERRORS.tokenRevoked();
    req.auth = claims;
    req.bearerToken = token;
    next();
  };
}

export function requireRole(role: string): RequestHandler {
  return (req, _res, next) => {
    if (!req.auth) throw ERRORS.tokenMissing();
    if (req.auth.role !== role) throw ERRORS.forbidden();
    next();
  };
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison of two secrets of any length. */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** The service keys a process accepts: the one it sends, then MANA_SERVICE_KEYS_ACCEPTED (key rotation). */
export function acceptedServiceKeys(cfg: { MANA_SERVICE_KEY: string; MANA_SERVICE_KEYS_ACCEPTED?: readonly string[] }): string[] {
  return [cfg.MANA_SERVICE_KEY, ...(cfg.MANA_SERVICE_KEYS_ACCEPTED ?? [])];
}

/**
 * Internal routes: `X-Service-Key` must equal one of the accepted keys (MANA_SERVICE_KEY, and during a rotation
 * MANA_SERVICE_KEYS_ACCEPTED). Every key is compared in constant time, all of them every time.
 */
export function requireServiceKey(expected: string | readonly string[]): RequestHandler {
  const expectedDigests = (typeof expected === 'string' ? [expected] : expected).map(digest);
  return (req, _res, next) => {
    const given = req.headers['x-service-key'];
    if (typeof given !== 'string' || given.length === 0) throw ERRORS.serviceKeyMissing();
    const givenDigest = digest(given);
    let ok = false;
    for (const d of expectedDigests) ok = timingSafeEqual(givenDigest, d) || ok;
    if (!ok) throw ERRORS.serviceKeyInvalid();
    next();
  };
}
