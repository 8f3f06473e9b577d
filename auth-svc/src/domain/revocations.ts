import { asc, gt, lt, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Conn } from '../db/types';

/** The gateway's denylist: revocations whose last access token has not expired yet (older ones are purged). */
export async function liveRevocations(conn: Conn) {
  await conn.delete(tables.sessionRevocations).where(lt(tables.sessionRevocations.expiresAt, sql`now() - interval '1 hour'`));
  const rows = await conn
    .select()
    .from(tables.sessionRevocations)
    .where(gt(tables.sessionRevocations.expiresAt, sql`now()`))
    .orderBy(asc(tables.sessionRevocations.revokedAt));
  return rows.map((r) => ({ sessionId: r.sessionId, userId: r.userId, expiresAt: r.expiresAt.toISOString() }));
}
