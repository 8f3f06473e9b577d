import { sql } from 'drizzle-orm';
import { bigint, boolean, check, customType, index, integer, jsonb, pgSchema, smallint, text, timestamp } from 'drizzle-orm/pg-core';
import { messagingTables } from '@mana/shared';

/** Everything vault-svc stores lives in this schema; no other service reads or writes it. */
export const vaultSchema = pgSchema('vault');

export const { outbox, processedMessages } = messagingTables(vaultSchema);

const bytea = customType<{ data: Buffer; driverData: Buffer }>({
  dataType: () => 'bytea',
});

/**
 * One row per user. The master key is stored only as a KEK wrap (AES-256-GCM ciphertext + tag) and/or
 * as a client-built recovery wrap the server cannot open. The CHECKs hold whatever the code does.
 * Row-level security, roles and grants are in the hand-written migration `0002_rls.sql`.
 */
export const encryptionVaults = vaultSchema.table(
  'encryption_vaults',
  {
    userId: text('user_id').primaryKey(),
    /** AES-256-GCM(KEK, MK) ciphertext followed by the 16-byte tag; null in zero-knowledge mode. */
    wrappedMk: bytea('wrapped_mk'),
    wrapIv: bytea('wrap_iv'),
    /** Which KEK produced wrapped_mk (rotation re-wraps rows whose id is not the active one). */
    kekId: text('kek_id'),
    formatVersion: smallint('format_version').notNull().default(1),
    /** Client-side wrap of the MK under the user's recovery secret (never seen by the server). */
    recoveryWrappedMk: bytea('recovery_wrapped_mk'),
    recoveryIv: bytea('recovery_iv'),
    recoverySetAt: timestamp('recovery_set_at', { withTimezone: true }),
    zeroKnowledge: boolean('zero_knowledge').notNull().default(false),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    rotatedAt: timestamp('rotated_at', { withTimezone: true }),
    /**
     * Key check value: HMAC-SHA256(MK, "mana-vault key-check v1"), 32 bytes (domain/key-check.ts). Proves a
     * client holds this MK before it may replace or drop a wrap; reveals nothing about the key. Null only
     * for vaults created before it existed, until the server next unwraps their key.
     */
    keyCheck: bytea('key_check'),
  },
  (t) => [
    check('encryption_vaults_has_wrap', sql`${t.wrappedMk} is not null or ${t.recoveryWrappedMk} is not null`),
    check(
      'encryption_vaults_wrap_iv_pair',
      sql`(${t.wrappedMk} is null) = (${t.wrapIv} is null) and (${t.wrappedMk} is null) = (${t.kekId} is null) and (${t.recoveryWrappedMk} is null) = (${t.recoveryIv} is null)`,
    ),
    check('encryption_vaults_key_check_length', sql`${t.keyCheck} is null or octet_length(${t.keyCheck}) = 32`),
    check(
      'encryption_vaults_zk_consistency',
      sql`not ${t.zeroKnowledge} or (${t.recoveryWrappedMk} is not null and ${t.wrappedMk} is null)`,
    ),
  ],
);

export const AUDIT_ACTIONS = [
  'init',
  'fetch',
  'rotate',
  'recovery_set',
  'recovery_cleared',
  'zk_enabled',
  'zk_disabled',
  'rewrap',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Append-only: the service role may INSERT and SELECT, never UPDATE or DELETE (see 0002_rls.sql). */
export const encryptionVaultAudit = vaultSchema.table(
  'encryption_vault_audit',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    userId: text('user_id').notNull(),
    action: text('action').$type<AuditAction>().notNull(),
    status: integer('status').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    context: jsonb('context').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('encryption_vault_audit_user_idx').on(t.userId, t.createdAt),
    check('encryption_vault_audit_action', sql.raw(`action in (${AUDIT_ACTIONS.map((a) => `'${a}'`).join(', ')})`)),
  ],
);

/**
 * Tombstones of erased users: the keyed pseudonym `erased:<hmac>` (VAULT_PSEUDONYM_SECRET), never the id. POST /init
 * refuses a tombstoned user, so a still-valid token cannot bring an erased vault (and audit rows naming the user)
 * back. Written by the erasure; read only through `vault.claim_user` (0007_erased_users.sql).
 */
export const erasedUsers = vaultSchema.table(
  'erased_users',
  {
    pseudonym: text('pseudonym').primaryKey(),
    erasedAt: timestamp('erased_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [check('erased_users_pseudonym', sql`${t.pseudonym} like 'erased:%'`)],
);
