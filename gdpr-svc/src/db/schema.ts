import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { messagingTables } from '@mana/shared';

/** Everything gdpr-svc stores lives in this schema; no other service reads or writes it. */
export const gdprSchema = pgSchema('gdpr');

export const { outbox, processedMessages } = messagingTables(gdprSchema);

export type ErasureStatus = 'in_progress' | 'partial' | 'completed';
export type Counts = Record<string, number>;

/**
 * One erasure saga. `user_id` is needed while it runs (the event names the user) and is cleared when it
 * completes; from then on only `subject` (a keyed hash of the user id) links the row to anyone.
 */
export const erasureRequests = gdprSchema.table(
  'erasure_requests',
  {
    id: uuid('id').primaryKey(),
    userId: text('user_id'),
    subject: text('subject').notNull(),
    /** `self` (DELETE /me/data) or `admin` (the internal route); the admin's id is kept hashed too. */
    origin: text('origin').notNull(),
    actorSubject: text('actor_subject'),
    reason: text('reason'),
    status: text('status').$type<ErasureStatus>().notNull().default('in_progress'),
    /** SHA-256 of every capability token handed out for this request (a repeated DELETE gets its own). */
    tokenHashes: text('token_hashes').array().notNull(),
    requestedAt: timestamp('requested_at', { withTimezone: true }).notNull().defaultNow(),
    deadlineAt: timestamp('deadline_at', { withTimezone: true }).notNull(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    attempts: integer('attempts').notNull().default(1),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull(),
    receipt: text('receipt'),
  },
  (t) => [
    // One running erasure per person: a second DELETE joins it.
    uniqueIndex('erasure_requests_open_subject_idx')
      .on(t.subject)
      .where(sql`${t.status} <> 'completed'`),
    index('erasure_requests_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.status} <> 'completed'`),
  ],
);

/** Each participant's first answer to a request. */
export const erasureParticipants = gdprSchema.table(
  'erasure_participants',
  {
    requestId: uuid('request_id').notNull(),
    service: text('service').notNull(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    deleted: jsonb('deleted').$type<Counts>(),
    pseudonymized: jsonb('pseudonymized').$type<Counts>(),
    retained: jsonb('retained').$type<Counts>(),
  },
  (t) => [primaryKey({ columns: [t.requestId, t.service] })],
);

/** Exports handed out, by keyed hash of the user id: the rate limit counts these rows. */
export const exportLog = gdprSchema.table(
  'export_log',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    subject: text('subject').notNull(),
    exportedAt: timestamp('exported_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('export_log_subject_idx').on(t.subject, t.exportedAt)],
);

/** Ed25519 keys that sign erasure receipts; retired keys stay published so old receipts still verify. */
export const signingKeys = gdprSchema.table('signing_keys', {
  kid: text('kid').primaryKey(),
  publicJwk: jsonb('public_jwk').$type<Record<string, unknown>>().notNull(),
  /** The private JWK, AES-256-GCM under a key derived from GDPR_SECRET: `v1.<iv>.<tag>.<ciphertext>` (base64url). */
  privateKeyEnc: text('private_key_enc').notNull(),
  active: boolean('active').notNull().default(true),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  retiredAt: timestamp('retired_at', { withTimezone: true }),
});
