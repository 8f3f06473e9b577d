import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { createJwtVerifier, jwtIssuer, type JwtVerifier } from '@mana/shared';
import type { Config } from '../config';
import { accessClaims, type AccessTokenSubject } from '../domain/tokens';
import type { Auth } from './auth';
import { currentSigningKey, signJwtWithKey, type SigningKey } from './better-auth-adapter';

/** The signing key last used, decrypted and imported once (per Better Auth instance). */
const signingKeys = new WeakMap<Auth, SigningKey>();

/**
 * Signs an access token with the JWT plugin's current key (same claims as Better Auth's /token).
 * `currentKeyId` is the current key's id as the database named it in the caller's own read (see
 * `TokenSubject`): while it is the key in memory, no key is read; any other value, or none, resolves the
 * key again, so a rotation takes effect with the next token.
 */
export async function mintAccessToken(auth: Auth, subject: AccessTokenSubject, currentKeyId?: string | null): Promise<string> {
  const payload = { ...accessClaims(subject), iat: Math.floor(Date.now() / 1000) };
  let key = signingKeys.get(auth);
  if (!key || currentKeyId === undefined || currentKeyId !== key.kid) {
    key = await currentSigningKey(auth);
    signingKeys.set(auth, key);
  }
  return signJwtWithKey(auth, key, payload);
}

/** The public keys as served at /api/auth/jwks (creates the first key pair when there is none). */
export async function currentJwks(auth: Auth): Promise<JSONWebKeySet> {
  return await auth.api.getJwks();
}

const KEYS_MAX_AGE_MS = 60_000;
const UNKNOWN_KID_COOLDOWN_MS = 1_000;

/**
 * auth-svc verifies its own tokens against its own key table (through Better Auth), not over HTTP:
 * the same rules as every other verifier (EdDSA only, iss, aud, exp), without a network hop.
 */
export function createLocalVerifier(auth: Auth, config: Config): JwtVerifier {
  let cache: { keys: JWTVerifyGetKey; kids: Set<string>; at: number } | undefined;
  const load = async () => {
    const jwks = await currentJwks(auth);
    cache = { keys: createLocalJWKSet(jwks), kids: new Set(jwks.keys.map((k) => k.kid ?? '')), at: Date.now() };
    return cache;
  };
  const keys: JWTVerifyGetKey = async (header, token) => {
    const age = cache ? Date.now() - cache.at : Infinity;
    const unknownKid = !!header.kid && !cache?.kids.has(header.kid);
    const c = age > KEYS_MAX_AGE_MS || (unknownKid && age > UNKNOWN_KID_COOLDOWN_MS) || !cache ? await load() : cache;
    return c.keys(header, token);
  };
  return createJwtVerifier({ jwksUrl: config.AUTH_JWKS_URL, issuer: jwtIssuer(config), audience: config.JWT_AUDIENCE, keys });
}
