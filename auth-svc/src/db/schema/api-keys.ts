import { sql } from 'drizzle-orm';
import { index, text, uuid } from 'drizzle-orm/pg-core';
import { authSchema, ts } from './base';
import { user } from './core';

/**
 * Personal API keys (`mana_…`). Only the SHA-256 of a key is stored (a key is 32 random bytes, so a
 * fast hash is enough: there is nothing to brute-force). Deleting a row — the owner's DELETE, or the
 * cascade of an erased user — revokes the key's sid `ak_<id>` through a trigger (drizzle/0010_api_keys.sql),
 * the same way a deleted session is revoked.
 */
export const apiKeys = authSchema.table(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: text('user_id')
      .notNull()
      .references(() => user.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    /** The first characters of the key (`mana_` + 8), shown in lists so the owner can tell keys apart. */
    prefix: text('prefix').notNull(),
    keyHash: text('key_hash').notNull().unique(),
    scopes: text('scopes')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    createdAt: ts('created_at').notNull().defaultNow(),
    lastUsedAt: ts('last_used_at'),
    /** null = never expires. */
    expiresAt: ts('expires_at'),
    /** Client IPs the key was exchanged from (most recent last, at most 20): a new one is a security event. */
    knownIps: text('known_ips')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
  },
  (t) => [index('api_keys_user_idx').on(t.userId)],
);
