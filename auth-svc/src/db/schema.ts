import { sql } from 'drizzle-orm';
import { bigint, boolean, index, integer, jsonb, pgSchema, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { messagingTables } from '@mana/shared';

/** Everything auth-svc stores lives in this schema; no other service reads or writes it. */
export const authSchema = pgSchema('auth');

export const { outbox, processedMessages } = messagingTables(authSchema);

const ts = (name: string) => timestamp(name, { withTimezone: true });

// Better Auth's core models. The TypeScript keys are Better Auth's field names (the drizzle adapter
// looks columns up by them); the SQL names are snake_case.

export const user = authSchema.table('user', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  email: text('email').notNull().unique(),
  emailVerified: boolean('email_verified').notNull().default(false),
  image: text('image'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
  /** `user` or `admin`; only the operator command and admin actions change it. */
  role: text('role').notNull().default('user'),
  /** BCP 47 tag chosen at sign-up (mail language). */
  locale: text('locale'),
});

export const session = authSchema.table(
  'session',
  {
    id: text('id').primaryKey(),
    expiresAt: ts('expires_at').notNull(),
    token: text('token').notNull().unique(),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    ipAddress: text('ip_address'),
    userAgent: text('user_agent'),
    userId: text('user_id')
      .notNull()
      .references(() => user.id, { onDelete: 'cascade' }),
    deviceId: text('device_id'),
    deviceName: text('device_name'),
  },
  (t) => [index('session_user_id_idx').on(t.userId)],
);

export const account = authSchema.table(
  'account',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id').notNull(),
    providerId: text('provider_id').notNull(),
    userId: text('user_id')
      .notNull()
      .references(() => user.id, { onDelete: 'cascade' }),
    accessToken: text('access_token'),
    refreshToken: text('refresh_token'),
    idToken: text('id_token'),
    accessTokenExpiresAt: ts('access_token_expires_at'),
    refreshTokenExpiresAt: ts('refresh_token_expires_at'),
    scope: text('scope'),
    password: text('password'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [index('account_user_id_idx').on(t.userId)],
);

export const verification = authSchema.table(
  'verification',
  {
    id: text('id').primaryKey(),
    identifier: text('identifier').notNull(),
    value: text('value').notNull(),
    expiresAt: ts('expires_at').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [index('verification_identifier_idx').on(t.identifier)],
);

/** Better Auth JWT plugin: signing keys (private key encrypted with BETTER_AUTH_SECRET). */
export const jwks = authSchema.table('jwks', {
  id: text('id').primaryKey(),
  publicKey: text('public_key').notNull(),
  privateKey: text('private_key').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  /** When the key stops signing; it stays published for the JWKS grace period after that. */
  expiresAt: ts('expires_at'),
  alg: text('alg'),
  crv: text('crv'),
});

/** Better Auth's rate limiter, when enabled (AUTH_RATE_LIMIT): shared by every instance. */
export const rateLimit = authSchema.table('rate_limit', {
  id: text('id').primaryKey(),
  key: text('key').notNull().unique(),
  count: integer('count').notNull(),
  lastRequest: bigint('last_request', { mode: 'number' }).notNull(),
});

// auth-svc's own tables.

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

/** Security audit log (issue 4 widens the event list). Never a password, token or code. */
export const securityEvents = authSchema.table(
  'security_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: text('user_id'),
    type: text('type').notNull(),
    ipAddress: text('ip_address'),
    userAgent: text('user_agent'),
    context: jsonb('context').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('security_events_user_idx').on(t.userId, t.createdAt)],
);
