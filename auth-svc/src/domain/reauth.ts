import { and, eq, gt, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Conn } from '../db/types';
import { recordSecurityEvent, type RequestMeta } from './security-events';

export interface SessionAuthTime {
  sessionId: string;
  userId: string;
  /** The later of the sign-in (the session's creation) and its last re-authentication. */
  authenticatedAt: Date;
}

/** Records that the session proved its secret again now (in one transaction with its audit row). */
export async function recordReauth(
  conn: Conn,
  sessionId: string,
  userId: string,
  meta: RequestMeta,
  method: 'password' | 'totp' | 'backup_code',
): Promise<Date> {
  const t = tables.sessionReauth;
  const [row] = await conn
    .insert(t)
    .values({ sessionId })
    .onConflictDoUpdate({ target: t.sessionId, set: { reauthenticatedAt: sql`now()` } })
    .returning({ at: t.reauthenticatedAt });
  await recordSecurityEvent(conn, { userId, type: 'reauthenticated', meta, context: { sessionId, method } });
  if (!row) throw new Error('session_reauth upsert returned no row');
  return row.at;
}

/** When a live session last authenticated; undefined for an unknown or ended session. */
export async function sessionAuthTime(conn: Conn, sessionId: string): Promise<SessionAuthTime | undefined> {
  const s = tables.session;
  const r = tables.sessionReauth;
  const [row] = await conn
    .select({
      sessionId: s.id,
      userId: s.userId,
      authenticatedAt: sql<Date>`greatest(${s.createdAt}, ${r.reauthenticatedAt})`.mapWith(s.createdAt),
    })
    .from(s)
    .leftJoin(r, eq(r.sessionId, s.id))
    .where(and(eq(s.id, sessionId), gt(s.expiresAt, sql`now()`)))
    .limit(1);
  return row;
}

/** Whether the session authenticated within `maxAgeSeconds` (judged by the database clock). */
export async function isRecentlyAuthenticated(conn: Conn, sessionId: string, maxAgeSeconds: number): Promise<boolean> {
  const s = tables.session;
  const r = tables.sessionReauth;
  const [row] = await conn
    .select({ recent: sql<boolean>`greatest(${s.createdAt}, ${r.reauthenticatedAt}) >= now() - make_interval(secs => ${maxAgeSeconds})` })
    .from(s)
    .leftJoin(r, eq(r.sessionId, s.id))
    .where(and(eq(s.id, sessionId), gt(s.expiresAt, sql`now()`)))
    .limit(1);
  return row?.recent === true;
}
