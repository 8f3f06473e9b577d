import { Router } from 'express';
import { z } from 'zod';
import { parseParams } from '@mana/shared';
import type { AuthContext } from '../context';
import { endOtherSessions, endSession, listSessions } from '../domain/sessions';
import { AUTH_ERRORS } from '../domain/errors';
import { publicSession, publicUser } from '../domain/views';
import { awaitRevocationsRelayed } from '../events/await-relayed';
import { requestMeta } from './request-meta';
import { liveSession, requireSession } from './require-session';

export const sessionParams = z.object({ id: z.string().min(1).max(256) });

/** Bearer routes of /api/v1/auth: the caller's own session(s). */
export function sessionRoutes(ctx: AuthContext): Router {
  const router = Router();
  const auth = requireSession(ctx);

  router.post('/logout', auth, async (req, res) => {
    const { session } = liveSession(req);
    await endSession(ctx.db, session.userId, session.id, requestMeta(req), 'sign_out');
    await awaitRevocationsRelayed(ctx, [session.id]);
    res.json({ success: true });
  });

  router.get('/session', auth, (req, res) => {
    const { session, user } = liveSession(req);
    res.json({ user: publicUser(user), session: publicSession(session, session.id) });
  });

  router.get('/sessions', auth, async (req, res) => {
    const { session } = liveSession(req);
    const sessions = await listSessions(ctx.db, session.userId);
    res.json({ sessions: sessions.map((s) => publicSession(s, session.id)) });
  });

  router.delete('/sessions/:id', auth, async (req, res) => {
    const { id } = parseParams(sessionParams, req.params);
    const { session } = liveSession(req);
    if (!(await endSession(ctx.db, session.userId, id, requestMeta(req)))) throw AUTH_ERRORS.sessionNotFound();
    await awaitRevocationsRelayed(ctx, [id]);
    res.json({ success: true });
  });

  router.delete('/sessions', auth, async (req, res) => {
    const { session } = liveSession(req);
    // The ids the DELETE returned, not a list read before it: a session started in between is waited for too.
    const ended = await endOtherSessions(ctx.db, session.userId, session.id, requestMeta(req));
    await awaitRevocationsRelayed(ctx, ended);
    res.json({ success: true, revoked: ended.length });
  });

  return router;
}
