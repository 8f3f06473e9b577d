import { createRemoteJWKSet, jwtVerify, errors as joseErrors, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { AppError, ERRORS } from '../errors';
import type { AccessClaims } from '../http/types';

/** The only algorithm an access token may use. */
export const ACCESS_TOKEN_ALGORITHMS = ['EdDSA'];

const claimsSchema = z.object({
  sub: z.string().min(1),
  email: z.string(),
  role: z.string().min(1),
  sid: z.string().min(1),
  iat: z.number(),
  exp: z.number(),
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
});

export type JwtFailureReason = 'missing' | 'invalid' | 'expired' | 'revoked' | 'unavailable';

export interface JwtVerifierOptions {
  /** Internal JWKS URL of auth-svc (configuration, never a URL from a token). */
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** Min time between JWKS refetches triggered by an unknown `kid`. */
  cooldownMs?: number;
  /** Max age of the cached key set before a refetch. */
  cacheMaxAgeMs?: number;
  /** Verified tokens remembered (never past their `exp`); 0 disables the cache. */
  cacheSize?: number;
  clockToleranceSec?: number;
  /** Overrides the key source (tests). */
  keys?: JWTVerifyGetKey;
}

export interface JwtVerifier {
  verify(token: string): Promise<AccessClaims>;
  /** The claims of a token verified before and not yet expired, without any async work (hot paths). */
  peek?(token: string): AccessClaims | undefined;
  /** How many verified tokens the cache holds now (tests, diagnostics). */
  cachedTokens?(): number;
  /** The reason code of an AppError thrown by verify (for metrics). */
  reasonOf(err: unknown): JwtFailureReason;
}

/**
 * The key set could not be obtained (auth-svc down, timing out, answering 5xx or garbage). That is our
 * outage, not a bad token: answering 401 would make clients throw away valid tokens.
 */
function keySourceFailed(err: unknown): boolean {
  if (err instanceof TypeError) return /fetch/i.test(err.message);
  if (!(err instanceof joseErrors.JOSEError)) return false;
  return err.code === 'ERR_JOSE_GENERIC' || err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid;
}

export function createJwtVerifier(opts: JwtVerifierOptions): JwtVerifier {
  const keys =
    opts.keys ??
    createRemoteJWKSet(new URL(opts.jwksUrl), {
      cooldownDuration: opts.cooldownMs ?? 30_000,
      cacheMaxAge: opts.cacheMaxAgeMs ?? 10 * 60_000,
      timeoutDuration: 5_000,
    });
  const cacheSize = opts.cacheSize ?? 10_000;
  const cache = new Map<string, AccessClaims>();
  /**
   * The newest token cached for each session (by `iat`): a refresh issues a new token for the same session, and the
   * one it replaces leaves the cache then, so the cache follows the active sessions rather than every token issued in
   * a lifetime (a soak with refreshes saw that as heap growth). An older token of the session (a second tab inside
   * the refresh grace, a late verify) never evicts a newer one: it is verified again and cached beside it.
   */
  const latestOfSession = new Map<string, string>();
  const forget = (token: string, claims: AccessClaims) => {
    cache.delete(token);
    if (latestOfSession.get(claims.sid) === token) latestOfSession.delete(claims.sid);
  };
  const tolerance = opts.clockToleranceSec ?? 0;
  /** A cached token is used until its exp (with the same tolerance jwtVerify applied), never after. */
  const unexpired = (claims: AccessClaims) => claims.exp > Math.floor(Date.now() / 1000) - tolerance;

  async function verifyUncached(token: string): Promise<AccessClaims> {
    try {
      const { payload } = await jwtVerify(token, keys, {
        algorithms: ACCESS_TOKEN_ALGORITHMS,
        issuer: opts.issuer,
        audience: opts.audience,
        requiredClaims: ['exp', 'iat', 'sub', 'sid'],
        clockTolerance: tolerance,
      });
      const parsed = claimsSchema.safeParse(payload);
      if (!parsed.success) throw ERRORS.tokenInvalid();
      return parsed.data;
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw ERRORS.tokenExpired();
      if (keySourceFailed(err))
        throw new AppError('AUTH_UNAVAILABLE', 503, 'Token keys are temporarily unavailable', { expose: true, cause: err });
      throw ERRORS.tokenInvalid();
    }
  }

  return {
    cachedTokens: () => cache.size,
    peek(token: string): AccessClaims | undefined {
      const hit = cache.get(token);
      return hit && unexpired(hit) ? hit : undefined;
    },
    async verify(token: string): Promise<AccessClaims> {
      const hit = cache.get(token);
      if (hit) {
        if (unexpired(hit)) return hit;
        forget(token, hit);
        throw ERRORS.tokenExpired();
      }
      const claims = await verifyUncached(token);
      if (cacheSize > 0) {
        // The session's newest token replaces the one before it (latestOfSession).
        const newest = latestOfSession.get(claims.sid);
        const newestClaims = newest === undefined ? undefined : cache.get(newest);
        if (!newestClaims || claims.iat > newestClaims.iat) {
          if (newest !== undefined && newest !== token) cache.delete(newest);
          latestOfSession.set(claims.sid, token);
        }
        // The oldest entries go first: the expired ones (tokens of one lifetime expire about in the order they were
        // first seen), so a steady stream of refreshed tokens keeps the cache at the live ones instead of filling it
        // to its bound with dead ones (the soak saw that as heap growth), and one more when the cache is full.
        for (const [oldToken, old] of cache) {
          if (unexpired(old) && cache.size < cacheSize) break;
          forget(oldToken, old);
        }
        cache.set(token, Object.freeze(claims));
      }
      return claims;
    },
    reasonOf(err: unknown): JwtFailureReason {
      const code = err instanceof AppError ? err.code : '';
      if (code === 'TOKEN_MISSING') return 'missing';
      if (code === 'TOKEN_EXPIRED') return 'expired';
      if (code === 'TOKEN_REVOKED') return 'revoked';
      if (code === 'AUTH_UNAVAILABLE') return 'unavailable';
      return 'invalid';
    },
  };
}

/** `Authorization: Bearer <token>` → token, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)\s*$/i.exec(header);
  return match?.[1];
}
