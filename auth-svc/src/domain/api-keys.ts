import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { and, desc, eq, sql } from 'drizzle-orm';
import { API_KEY_PREFIX, ERRORS, apiKeySessionId, isWellFormedApiKey, type ApiKeyScope } from '@mana/shared';
import * as tables from '../db/schema';
import type { Conn, Db } from '../db/types';
import { activeBan } from './bans';
import { AUTH_ERRORS } from './errors';
import { recordSecurityEvent, type RequestMeta } from './security-events';

type ApiKeyRow = typeof tables.apiKeys.$inferSelect;
type UserRow = typeof tables.user.$inferSelect;

/** Characters of the key kept in clear (`mana_` + 8) so lists can tell keys apart; the other 35 stay secret. */
const SHOWN_PREFIX_LENGTH = API_KEY_PREFIX.length + 8;
/**
 * Keys one account may hold: each key has its own rate limit at the gateway, so unbounded keys would be an
 * unbounded rate.
 */
export const MAX_API_KEYS_PER_USER = 50;
/** Client IPs remembered per key for the "used from a new IP" event. */
const KNOWN_IPS_KEPT = 20;

/**
 * SHA-256 of the whole key. A key carries 256 random bits, so a slow password hash would add cost and no
 * safety: nobody can enumerate the input space of a leaked digest.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** What the owner sees of a key, ever (lists, GDPR view): never the key or its hash. */
export function publicApiKey(k: ApiKeyRow) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes as ApiKeyScope[],
    createdAt: k.createdAt.toISOString(),
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
    expiresAt: k.expiresAt?.toISOString() ?? null,
  };
}

/**
 * Refuses a banned user a key, as the session insert refuses them a session (drizzle/0015), in the same order: the
 * user row `FOR SHARE` first, which waits for a `banUser` holding it `FOR UPDATE` until that commits, then the ban
 * read by a new statement (under READ COMMITTED a fresh snapshot, so it sees a ban committed while the lock was
 * awaited). A ban that got the lock second waits for this transaction, and its key DELETE then sees the new key.
 * The request's live session is no guard: the ban may commit after it was checked.
 */
async function refuseBannedUser(tx: Conn, userId: string): Promise<void> {
  const [user] = await tx.select({ id: tables.user.id }).from(tables.user).where(eq(tables.user.id, userId)).for('share');
  // Erased meanwhile (the lock waited for the erasure's DELETE, which ended the token's session too): the token's
  // session has ended, as its next request would hear (the key's insert would fail on its foreign key, a 500).
  if (!user) throw ERRORS.tokenRevoked();
  if (await activeBan(tx, userId)) throw AUTH_ERRORS.accountBanned();
}

/**
 * Creates a key; the clear key is in the answer and nowhere else. A banned user gets 403 ACCOUNT_BANNED, a user
 * erased while the request ran 401 TOKEN_REVOKED.
 */
export async function createApiKey(
  db: Db,
  userId: string,
  input: { name: string; scopes: readonly ApiKeyScope[]; expiresInDays?: number },
  meta: RequestMeta,
) {
  const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const prefix = key.slice(0, SHOWN_PREFIX_LENGTH);
  const scopes = [...new Set(input.scopes)];
  return db.transaction(async (tx) => {
    // One creation per user at a time, so concurrent ones cannot both pass the count.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`api_keys:${userId}`}, 0))`);
    await refuseBannedUser(tx, userId);
    const [held] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(tables.apiKeys)
      .where(eq(tables.apiKeys.userId, userId));
    if ((held?.n ?? 0) >= MAX_API_KEYS_PER_USER) throw AUTH_ERRORS.apiKeyLimit(MAX_API_KEYS_PER_USER);
    const [row] = await tx
      .insert(tables.apiKeys)
      .values({
        userId,
        name: input.name,
        prefix,
        keyHash: hashApiKey(key),
        scopes,
        expiresAt: input.expiresInDays === undefined ? null : sql`now() + make_interval(days => ${input.expiresInDays})`,
      })
      .returning();
    if (!row) throw new Error('api key insert returned no row');
    await recordSecurityEvent(tx, {
      userId,
      type: 'api_key_created',
      meta,
      context: { keyId: row.id, name: row.name, prefix, scopes, expiresAt: row.expiresAt?.toISOString() ?? null },
    });
    const { id, name, expiresAt } = publicApiKey(row);
    return { id, key, name, prefix, scopes, expiresAt };
  });
}

export async function listApiKeys(conn: Conn, userId: string) {
  const rows = await conn
    .select()
    .from(tables.apiKeys)
    .where(eq(tables.apiKeys.userId, userId))
    .orderBy(desc(tables.apiKeys.createdAt), desc(tables.apiKeys.id));
  return rows.map(publicApiKey);
}

/**
 * Deletes one of the user's keys; false when there is none. The delete trigger (drizzle/0012_api_keys.sql)
 * revokes the key's sid and writes session.revoked.v1 in this transaction.
 */
export async function deleteApiKey(db: Db, userId: string, keyId: string, meta: RequestMeta): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [gone] = await tx
      .delete(tables.apiKeys)
      .where(and(eq(tables.apiKeys.id, keyId), eq(tables.apiKeys.userId, userId)))
      .returning({ id: tables.apiKeys.id, name: tables.apiKeys.name, prefix: tables.apiKeys.prefix });
    if (!gone) return false;
    await recordSecurityEvent(tx, {
      userId,
      type: 'api_key_deleted',
      meta,
      context: { keyId: gone.id, name: gone.name, prefix: gone.prefix },
    });
    return true;
  });
}

export type ExchangeResult = { kind: 'ok'; key: ApiKeyRow; user: UserRow; sessionId: string } | { kind: 'invalid' };

/**
 * The gateway's exchange: the key's row and owner when the key exists, has not expired and the owner is
 * not banned. Records the use (last used, known IPs) and a security event for an IP the key has not been
 * used from. Lookup is by digest (a unique index); the digests are compared again in constant time.
 */
export async function exchangeApiKey(db: Db, key: string, meta: RequestMeta): Promise<ExchangeResult> {
  if (!isWellFormedApiKey(key)) return { kind: 'invalid' };
  const digest = hashApiKey(key);
  const t = tables.apiKeys;
  return db.transaction(async (tx) => {
    const [found] = await tx
      .select({ key: t, user: tables.user, expired: sql<boolean>`coalesce(${t.expiresAt} <= now(), false)` })
      .from(t)
      .innerJoin(tables.user, eq(tables.user.id, t.userId))
      .where(eq(t.keyHash, digest))
      .limit(1);
    if (!found || found.expired || !timingSafeEqual(Buffer.from(found.key.keyHash), Buffer.from(digest))) return { kind: 'invalid' };
    if (await activeBan(tx, found.user.id)) return { kind: 'invalid' };
    await tx
      .update(t)
      .set({ lastUsedAt: sql`now()` })
      .where(eq(t.id, found.key.id));
    const ip = meta.ipAddress;
    if (ip) {
      // Appended only when absent: under concurrent exchanges from one new IP exactly one update matches.
      const appended = await tx
        .update(t)
        .set({ knownIps: sql`(${t.knownIps} || array[${ip}::text])[greatest(1, cardinality(${t.knownIps}) + 2 - ${KNOWN_IPS_KEPT}):]` })
        .where(and(eq(t.id, found.key.id), sql`not (${ip}::text = any(${t.knownIps}))`))
        .returning({ id: t.id });
      if (appended.length > 0)
        await recordSecurityEvent(tx, {
          userId: found.user.id,
          type: 'api_key_used_new_ip',
          meta,
          context: { keyId: found.key.id, name: found.key.name, prefix: found.key.prefix },
        });
    }
    return { kind: 'ok', key: found.key, user: found.user, sessionId: apiKeySessionId(found.key.id) };
  });
}
