import { sql } from 'drizzle-orm';
import { index, integer, jsonb, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { authSchema, ts } from './base';
import { user } from './core';

// Security: the audit log, sign-in lockouts, known devices, bans.

/** Security audit log (issue 4 widens the event list). Never a password, token or code. */
export const securityEvents = authSchema.table(
  'security_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: text('user_id'),
    type: text('type').notNull(),
    ipAddress: text('ip_address'),
    userAgent: text('user_agent'),
    context: jsonb('context')
      .$type<Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('security_events_user_idx').on(t.userId, t.createdAt)],
);

/**
 * Failed sign-ins per normalized email (known or not, so locking reveals nothing), shared by every
 * instance. A window starts with its first failure; reaching the limit inside it locks the email.
 */
export const signInLockouts = authSchema.table('sign_in_lockouts', {
  email: text('email').primaryKey(),
  failures: integer('failures').notNull().default(0),
  windowStartedAt: ts('window_started_at').notNull().defaultNow(),
  lockedUntil: ts('locked_until'),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/** Devices a user has signed in from (SHA-256 of device id or user agent): a new one gets a mail. */
export const knownDevices = authSchema.table(
  'known_devices',
  {
    userId: text('user_id')
      .notNull()
      .references(() => user.id, { onDelete: 'cascade' }),
    fingerprint: text('fingerprint').notNull(),
    firstSeenAt: ts('first_seen_at').notNull().defaultNow(),
    lastSeenAt: ts('last_seen_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.fingerprint] })],
);

/** An admin's ban (admin-svc asks through /api/v1/internal/users/:id/ban): no new session while live; `expires_at` lifts it. */
export const userBans = authSchema.table('user_bans', {
  userId: text('user_id')
    .primaryKey()
    .references(() => user.id, { onDelete: 'cascade' }),
  reason: text('reason').notNull(),
  expiresAt: ts('expires_at'),
  bannedBy: text('banned_by'),
  createdAt: ts('created_at').notNull().defaultNow(),
});
