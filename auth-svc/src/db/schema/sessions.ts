import { boolean, check, index, integer, text, uuid } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
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
    /**
     * The successor this token was exchanged for, sealed (AES-256-GCM under a key derived from
     * BETTER_AUTH_SECRET and this token, see domain/refresh-seal.ts): a double-submit inside the grace
     * window gets the same successor, so a session has one token chain. Null until the token is spent.
     */
    successorSealed: text('successor_sealed'),
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

/**
 * The absolute session lifetime (SESSION_MAX_LIFETIME_SECONDS), one row written by auth-svc at start.
 * A trigger on `session` (drizzle/0011_session_max_lifetime.sql) caps every insert and update of
 * `expires_at` at `created_at` + this, on every path: our refresh and Better Auth's cookie refresh.
 */
export const sessionPolicy = authSchema.table(
  'session_policy',
  {
    id: boolean('id').primaryKey().default(true),
    maxLifetimeSeconds: integer('max_lifetime_seconds').notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    /** False while the sessions that exist still owe the cap of a lower lifetime (domain/sessions.ts applySessionPolicy). */
    sessionsCapped: boolean('sessions_capped').notNull().default(true),
  },
  (t) => [check('session_policy_single_row', sql`${t.id}`), check('session_policy_positive', sql`${t.maxLifetimeSeconds} > 0`)],
);
