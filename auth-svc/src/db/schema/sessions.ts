import { index, integer, text, uuid } from 'drizzle-orm/pg-core';
import { authSchema, ts } from './base';
import { session } from './core';

// auth-svc's session bookkeeping: refresh-token families, revocations (the gateway's denylist),
// re-authentication times.

/**
 * Opaque refresh tokens of /api/v1/auth, stored as SHA-256 only. The family is the session: every
 * rotation adds a row with the same session id, and ending the session deletes the family.
 */
export const refreshTokens = authSchema.table(
  'refresh_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tokenHash: text('token_hash').notNull().unique(),
    sessionId: text('session_id')
      .notNull()
      .references(() => session.id, { onDelete: 'cascade' }),
    userId: text('user_id').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
    /** Set when the token was exchanged; a later exchange outside the grace window is a reuse. */
    usedAt: ts('used_at'),
    /** Exchanges after the first, inside the grace window (two tabs refreshing at once): at most one. */
    graceExchanges: integer('grace_exchanges').notNull().default(0),
  },
  (t) => [index('refresh_tokens_session_idx').on(t.sessionId)],
);

/**
 * Sessions ended while access tokens minted for them may still be valid. Written by a trigger on
 * `session` deletes (every path: Better Auth, our routes, cascades), served to the gateway.
 */
export const sessionRevocations = authSchema.table(
  'session_revocations',
  {
    sessionId: text('session_id').primaryKey(),
    userId: text('user_id').notNull(),
    revokedAt: ts('revoked_at').notNull().defaultNow(),
    /** When the last access token of the session expires (revocation + access-token lifetime). */
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [index('session_revocations_expires_idx').on(t.expiresAt)],
);

/**
 * Step-up authentication: when a session last proved its secret again (POST /api/v1/auth/reauth). A
 * session's own `created_at` (its sign-in) counts too; sensitive operations need one of them recent.
 */
export const sessionReauth = authSchema.table('session_reauth', {
  sessionId: text('session_id')
    .primaryKey()
    .references(() => session.id, { onDelete: 'cascade' }),
  reauthenticatedAt: ts('reauthenticated_at').notNull().defaultNow(),
});
