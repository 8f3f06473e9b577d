import { createHash, randomBytes } from 'node:crypto';

/**
 * Access-token lifetime (architecture contract: 15 minutes). The session-revocation trigger in
 * drizzle/0002_user_session_events.sql uses the same interval: keep them equal.
 */
export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
/** Refresh tokens live 7 days; every rotation starts a new 7 days. */
export const REFRESH_TOKEN_TTL_SECONDS = 7 * 24 * 3600;
/** Two tabs refreshing with the same token within this window both succeed (no reuse alarm). */
export const REFRESH_GRACE_SECONDS = 10;
/**
 * How long a rotated-out signing key stays in the JWKS after it stopped signing: the access-token
 * lifetime plus clock-skew slack, so every token it signed has expired before it disappears.
 */
export const JWKS_GRACE_SECONDS = ACCESS_TOKEN_TTL_SECONDS + 5 * 60;

/** 32 random bytes, base64url: opaque to clients. */
export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Only this digest is stored; the token itself is never written anywhere. */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The minimal claim set of an access token (plus iat/exp/iss/aud added by the signer). */
export interface AccessTokenSubject {
  user: { id: string; email: string; role?: string | null };
  session: { id: string };
}

export function accessClaims(s: AccessTokenSubject): { sub: string; email: string; role: string; sid: string } {
  return { sub: s.user.id, email: s.user.email, role: s.user.role ?? 'user', sid: s.session.id };
}
