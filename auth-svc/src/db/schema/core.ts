import { bigint, boolean, index, integer, text } from 'drizzle-orm/pg-core';
import { authSchema, ts } from './base';

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
  /** Better Auth two-factor plugin: TOTP activated. */
  twoFactorEnabled: boolean('two_factor_enabled').default(false),
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
    /** Better Auth organization plugin: the organization this session acts for. */
    activeOrganizationId: text('active_organization_id'),
    /**
     * The credential account's `passwordVersion` a password sign-in checked (null for a session not made by a password
     * check): the session INSERT refuses it once that password changed (drizzle/0016, plugins/password-version.ts).
     */
    passwordVersion: integer('password_version'),
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
    /** Bumped by a trigger whenever `password` changes (drizzle/0016): which password a sign-in's check read. */
    passwordVersion: integer('password_version').notNull().default(0),
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
    /**
     * On a pending two-factor sign-in only: the credential account's `passwordVersion` its password step checked,
     * written into the session its second step creates (drizzle/0017, plugins/password-version.ts).
     */
    passwordVersion: integer('password_version'),
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
