import { createHash } from 'node:crypto';
import { and, eq, gt } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Conn } from '../db/types';

/** How @better-auth/oauth-provider stores tokens with `storeTokens: 'hashed'`: SHA-256, base64url without padding. */
export const storedOAuthToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('base64url');

/**
 * Whether an OIDC refresh token may still be exchanged as far as its session goes: `'ended'` when the
 * session it was issued in is gone (logout, log out everywhere, password change or reset, ban — the
 * plugin's foreign key then sets `session_id` to null) or past its expiry; `'unknown'` when no such
 * token exists (the plugin answers that itself); else `'live'`.
 */
export async function oauthRefreshTokenSession(conn: Conn, refreshToken: string): Promise<'live' | 'ended' | 'unknown'> {
  const [row] = await conn
    .select({ sessionId: tables.oauthRefreshToken.sessionId, liveSession: tables.session.id })
    .from(tables.oauthRefreshToken)
    .leftJoin(tables.session, and(eq(tables.session.id, tables.oauthRefreshToken.sessionId), gt(tables.session.expiresAt, new Date())))
    .where(eq(tables.oauthRefreshToken.token, storedOAuthToken(refreshToken)))
    .limit(1);
  if (!row) return 'unknown';
  return row.liveSession ? 'live' : 'ended';
}
