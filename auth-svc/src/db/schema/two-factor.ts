import { boolean, index, integer, text } from 'drizzle-orm/pg-core';
import { authSchema, ts } from './base';
import { user } from './core';

// Two-factor: Better Auth's TOTP plugin table and the /api/v1 login challenges.

/** Better Auth two-factor plugin: TOTP secret and backup codes (both encrypted by the plugin). */
export const twoFactor = authSchema.table(
  'two_factor',
  {
    id: text('id').primaryKey(),
    secret: text('secret').notNull(),
    backupCodes: text('backup_codes').notNull(),
    userId: text('user_id')
      .notNull()
      .references(() => user.id, { onDelete: 'cascade' }),
    verified: boolean('verified').default(true),
    failedVerificationCount: integer('failed_verification_count').default(0),
    lockedUntil: ts('locked_until'),
  },
  (t) => [index('two_factor_user_idx').on(t.userId), index('two_factor_secret_idx').on(t.secret)],
);

/**
 * Pending second factor of a POST /api/v1/auth/login: the challenge is stored as SHA-256 only; the
 * Better Auth two-factor cookie it stands for is sealed with a key derived from the challenge.
 */
export const twoFactorChallenges = authSchema.table(
  'two_factor_challenges',
  {
    challengeHash: text('challenge_hash').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => user.id, { onDelete: 'cascade' }),
    sealed: text('sealed').notNull(),
    deviceId: text('device_id'),
    deviceName: text('device_name'),
    userAgent: text('user_agent'),
    ipAddress: text('ip_address'),
    createdAt: ts('created_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [index('two_factor_challenges_user_idx').on(t.userId)],
);
