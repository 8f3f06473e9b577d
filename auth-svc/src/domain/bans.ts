import { and, eq, gt, isNull, or, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Conn, Db } from '../db/types';
import { recordSecurityEvent } from './security-events';

export interface Ban {
  reason: string;
  expiresAt: Date | null;
}

/** The user's ban while it lasts; a ban past its `expires_at` is lifted by that alone (no job needed). */
export async function activeBan(conn: Conn, userId: string): Promise<Ban | undefined> {
  const [row] = await conn
    .select({ reason: tables.userBans.reason, expiresAt: tables.userBans.expiresAt })
    .from(tables.userBans)
    .where(and(eq(tables.userBans.userId, userId), or(isNull(tables.userBans.expiresAt), gt(tables.userBans.expiresAt, sql`now()`))))
    .limit(1);
  return row;
}

export type BanResult = { kind: 'not-found' } | { kind: 'banned'; sessionsEnded: number; expiresAt: Date | null };

/**
 * Bans a user and ends every session and API key in the same transaction: deleting the rows fires
 * session.revoked.v1 (triggers), so gateways refuse the user's access tokens and drop cached key exchanges
 * at once, and the refresh tokens go with the sessions (FK). Keys are deleted, not suspended: after a ban
 * is lifted the owner makes new ones.
 */
export async function banUser(
  db: Db,
  userId: string,
  ban: { reason: string; expiresAt: Date | null; actorId: string | null },
): Promise<BanResult> {
  return db.transaction(async (tx) => {
    const [user] = await tx.select({ id: tables.user.id }).from(tables.user).where(eq(tables.user.id, userId)).for('update');
    if (!user) return { kind: 'not-found' };
    const values = { reason: ban.reason, expiresAt: ban.expiresAt, bannedBy: ban.actorId, createdAt: sql`now()` };
    await tx
      .insert(tables.userBans)
      .values({ userId, ...values })
      .onConflictDoUpdate({ target: tables.userBans.userId, set: values });
    const ended = await tx.delete(tables.session).where(eq(tables.session.userId, userId)).returning({ id: tables.session.id });
    const keys = await tx.delete(tables.apiKeys).where(eq(tables.apiKeys.userId, userId)).returning({ id: tables.apiKeys.id });
    await recordSecurityEvent(tx, {
      userId,
      type: 'sessions_revoked',
      context: {
        by: 'admin',
        actorId: ban.actorId,
        banned: true,
        expiresAt: ban.expiresAt?.toISOString() ?? null,
        count: ended.length,
        apiKeys: keys.length,
      },
    });
    return { kind: 'banned', sessionsEnded: ended.length, expiresAt: ban.expiresAt };
  });
}

/** Lifts a ban; false when there was none. */
export async function unbanUser(db: Db, userId: string): Promise<boolean> {
  const gone = await db.delete(tables.userBans).where(eq(tables.userBans.userId, userId)).returning({ id: tables.userBans.userId });
  return gone.length > 0;
}

/** Ends every session of a user (an admin action); returns how many ended, or undefined for an unknown user. */
export async function endAllSessions(db: Db, userId: string, actorId: string | null): Promise<number | undefined> {
  return db.transaction(async (tx) => {
    const [user] = await tx.select({ id: tables.user.id }).from(tables.user).where(eq(tables.user.id, userId));
    if (!user) return undefined;
    const ended = await tx.delete(tables.session).where(eq(tables.session.userId, userId)).returning({ id: tables.session.id });
    await recordSecurityEvent(tx, { userId, type: 'sessions_revoked', context: { by: 'admin', actorId, count: ended.length } });
    return ended.length;
  });
}
