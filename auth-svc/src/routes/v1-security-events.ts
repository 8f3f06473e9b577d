import { Router } from 'express';
import { and, desc, eq, lt, or, sql } from 'drizzle-orm';
import { z } from 'zod';
import { parseQuery } from '@mana/shared';
import type { AuthContext } from '../context';
import * as tables from '../db/schema';
import { AUTH_ERRORS } from '../domain/errors';
import { liveSession, requireSession } from './require-session';

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  /** `nextCursor` of the previous page. */
  cursor: z.string().max(200).optional(),
});

const encodeCursor = (createdAt: string, id: string) => Buffer.from(`${createdAt}|${id}`).toString('base64url');
function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const [createdAt, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (!createdAt || !id || Number.isNaN(Date.parse(createdAt)) || !/^[0-9a-f-]{36}$/.test(id))
    throw AUTH_ERRORS.invalidCursor();
  return { createdAt, id };
}

/** GET /api/v1/auth/security-events (bearer): the caller's own audit trail, newest first. */
export function securityEventRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.get('/security-events', requireSession(ctx), async (req, res) => {
    const q = parseQuery(listQuery, req.query);
    const { session } = liveSession(req);
    const t = tables.securityEvents;
    const after = q.cursor ? decodeCursor(q.cursor) : undefined;
    // Microsecond timestamps round-trip through text so the keyset compares exactly.
    const createdAt = sql<string>`to_char(${t.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
    const rows = await ctx.db
      .select({ id: t.id, type: t.type, ipAddress: t.ipAddress, userAgent: t.userAgent, context: t.context, createdAt })
      .from(t)
      .where(
        and(
          eq(t.userId, session.userId),
          after
            ? or(lt(t.createdAt, sql`${after.createdAt}::timestamptz`), and(eq(t.createdAt, sql`${after.createdAt}::timestamptz`), lt(t.id, after.id)))
            : undefined,
        ),
      )
      .orderBy(desc(t.createdAt), desc(t.id))
      .limit(q.limit + 1);
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    res.json({ events: page, nextCursor: rows.length > q.limit && last ? encodeCursor(last.createdAt, last.id) : null });
  });
  return router;
}
