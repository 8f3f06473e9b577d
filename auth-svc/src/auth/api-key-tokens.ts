import type { ApiKeyScope } from '@mana/shared';
import { accessClaims } from '../domain/tokens';
import type { Auth } from './auth';

/**
 * Lifetime of the access token a key is exchanged for. Short, because the gateway caches it: a role
 * change or ban reaches a key's requests within this time even without a revocation (deleting the key
 * revokes at once).
 */
export const API_KEY_TOKEN_TTL_SECONDS = 5 * 60;

/**
 * Signs the access token of an API key: the claims of every access token (sub, email, role, sid) with
 * sid = `ak_<key id>`. The role is `admin` only when the owner is an admin *and* the key has the `admin`
 * scope, so the token of any other key is refused by admin routes even if it leaked past the gateway.
 * `exp` never goes past the key's own expiry.
 */
export async function mintApiKeyToken(
  auth: Auth,
  s: {
    user: { id: string; email: string; role: string | null };
    sessionId: string;
    scopes: readonly ApiKeyScope[];
    keyExpiresAt: Date | null;
  },
): Promise<{ token: string; expiresAt: Date }> {
  const iat = Math.floor(Date.now() / 1000);
  let exp = iat + API_KEY_TOKEN_TTL_SECONDS;
  if (s.keyExpiresAt) exp = Math.min(exp, Math.floor(s.keyExpiresAt.getTime() / 1000));
  const role = s.user.role === 'admin' && s.scopes.includes('admin') ? 'admin' : 'user';
  const payload = { ...accessClaims({ user: { ...s.user, role }, session: { id: s.sessionId } }), iat, exp };
  const { token } = await auth.api.signJWT({ body: { payload } });
  return { token, expiresAt: new Date(exp * 1000) };
}
