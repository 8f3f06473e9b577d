import { Router } from 'express';
import { z } from 'zod';
import { parseQuery } from '@mana/shared';
import type { AuthContext } from '../context';
import { AUTH_ERRORS } from '../domain/errors';
import { securityEventsPage } from '../domain/security-events';
import { liveSession, requireSession } from './require-session';

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  /** `nextCursor` of the previous page. */
  cursor: z.string().max(200).optional(),
});

const encodeCursor = (createdAt: string, id: string) => Buffer.from(`${createdAt}|${id}`).toString('base64url');
function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const [createdAt, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (!createdAt || !id || Number.isNaN(Date.parse(createdAt)) || !/^[0-9a-f-]{36}$/.test(id)) throw AUTH_ERRORS.invalidCursor();
  return { createdAt, id };
}

/** GET /api/v1/auth/security-events (bearer): the caller's own audit trail, newest first. */
export function securityEventRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.get('/security-events', requireSession(ctx), async (req, res) => {
    const q = parseQuery(listQuery, req.query);
    const { session } = liveSession(req);
    const { events, more } = await securityEventsPage(ctx.db, session.userId, q.limit, q.cursor ? decodeCursor(q.cursor) : undefined);
    const last = events.at(-1);
    res.json({ events, nextCursor: more && last ? encodeCursor(last.createdAt, last.id) : null });
  });
  return router;
}
