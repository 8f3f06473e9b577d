import { sql } from 'drizzle-orm';
import { bigint, boolean, index, jsonb, pgSchema, text, timestamp } from 'drizzle-orm/pg-core';
import { messagingTables } from '@mana/shared';

/** Everything admin-svc stores lives in this schema; no other service reads or writes it. */
export const adminSchema = pgSchema('admin');

export const { outbox, processedMessages } = messagingTables(adminSchema);

const ts = (name: string) => timestamp(name, { withTimezone: true });
/** Field version: the `occurredAt` of the event that last set the field (`-infinity` = never set). */
const fieldAt = (name: string) =>
  ts(name)
    .notNull()
    .default(sql`'-infinity'`);

/**
 * The user directory: a projection of auth-svc's users (user.registered.v1, user.updated.v1, the resync)
 * plus what admin-svc owns itself (tier, ban state). Each projected field carries the time of the event
 * that set it, so an older event delivered late never overwrites a newer value. The search index
 * (pg_trgm, GIN) lives in the custom migration 0003.
 */
export const directoryUsers = adminSchema.table(
  'directory_users',
  {
    id: text('id').primaryKey(),
    email: text('email').notNull().default(''),
    emailAt: fieldAt('email_at'),
    name: text('name').notNull().default(''),
    nameAt: fieldAt('name_at'),
    role: text('role').notNull().default('user'),
    roleAt: fieldAt('role_at'),
    emailVerified: boolean('email_verified').notNull().default(false),
    emailVerifiedAt: fieldAt('email_verified_at'),
    tier: text('tier').notNull(),
    banned: boolean('banned').notNull().default(false),
    banReason: text('ban_reason'),
    banExpiresAt: ts('ban_expires_at'),
    createdAt: ts('created_at').notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    // Ascending (not DESC NULLS LAST, which drizzle's .desc() means and which cannot serve ORDER BY … DESC):
    // scanned forward for createdAt, backward for -createdAt.
    index('directory_users_created_idx').on(t.createdAt, t.id),
    index('directory_users_email_idx').on(t.email, t.id),
    index('directory_users_name_idx').on(t.name, t.id),
  ],
);

/**
 * Append-only for the service's role `admin_app` (migration 0003 grants it SELECT and INSERT only). One row
 * per admin write; on erasure of a user, actor and target ids become a keyed pseudonym (`erased:<hmac>`).
 */
export const auditLog = adminSchema.table(
  'audit_log',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    actorId: text('actor_id').notNull(),
    action: text('action').notNull(),
    targetId: text('target_id'),
    reason: text('reason'),
    changes: jsonb('changes')
      .$type<Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    requestId: text('request_id'),
    ipAddress: text('ip_address'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('audit_log_target_idx').on(t.targetId, t.id), index('audit_log_actor_idx').on(t.actorId, t.id)],
);

/**
 * Erased users by keyed pseudonym (never the id): an event about them delivered after the erasure
 * (a late user.updated.v1) must not bring a directory row back.
 */
export const erasedUsers = adminSchema.table('erased_users', {
  pseudonym: text('pseudonym').primaryKey(),
  erasedAt: ts('erased_at').notNull().defaultNow(),
});
