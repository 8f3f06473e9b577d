import express, { Router } from 'express';
import { z } from 'zod';
import { parseBody, parseParams, parseQuery, acceptedServiceKeys, requireServiceKey } from '@mana/shared';
import type { AuthContext } from '../context';
import { usersPage, setRoleById, userActivity } from '../domain/admin-users';
import { banUser, endAllSessions, unbanUser } from '../domain/bans';
import { AUTH_ERRORS } from '../domain/errors';
import { ROLES } from '../domain/roles';

export const params = z.object({ id: z.string().min(1).max(128) });
export const pageQuery = z.object({
  cursor: z
    .string()
    .max(128)
    .optional()
    .transform((c) => c || undefined),
  limit: z.coerce.number().int().min(1).max(1000).default(500),
});
const actor = z.string().min(1).max(128).optional();
export const banBody = z.object({
  reason: z.string().trim().min(1).max(500),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  actorId: actor,
});
export const roleBody = z.object({ role: z.enum(ROLES), actorId: actor });
export const actorBody = z.object({ actorId: actor }).default({});

/**
 * `/api/v1/internal/users*` (service key): what admin-svc needs from auth-svc — a paged walk over every
 * user (directory resync), a user's activity, bans, ending sessions and role changes. Outside the
 * `/api/v1/internal/admin` prefix, which the gateway routes to admin-svc.
 */
export function internalAdminRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.use('/users', requireServiceKey(acceptedServiceKeys(ctx.config)), express.json({ limit: ctx.config.BODY_LIMIT }));

  router.get('/users', async (req, res) => {
    const q = parseQuery(pageQuery, req.query);
    res.json(await usersPage(ctx.db, q.cursor, q.limit));
  });

  router.get('/users/:id/activity', async (req, res) => {
    const { id } = parseParams(params, req.params);
    const activity = await userActivity(ctx.db, id);
    if (!activity) throw AUTH_ERRORS.userNotFound();
    res.json({ userId: id, ...activity });
  });

  router.post('/users/:id/ban', async (req, res) => {
    const { id } = parseParams(params, req.params);
    const body = parseBody(banBody, req.body);
    const expiresAt = body.expiresAt ? new Date(body.expiresAt) : null;
    const result = await banUser(ctx.db, id, { reason: body.reason, expiresAt, actorId: body.actorId ?? null });
    if (result.kind === 'not-found') throw AUTH_ERRORS.userNotFound();
    ctx.kickOutbox();
    res.json({ userId: id, banned: true, expiresAt: result.expiresAt?.toISOString() ?? null, sessionsEnded: result.sessionsEnded });
  });

  router.delete('/users/:id/ban', async (req, res) => {
    const { id } = parseParams(params, req.params);
    res.json({ userId: id, banned: false, wasBanned: await unbanUser(ctx.db, id) });
  });

  router.post('/users/:id/sessions/revoke', async (req, res) => {
    const { id } = parseParams(params, req.params);
    const body = parseBody(actorBody, req.body ?? {});
    const ended = await endAllSessions(ctx.db, id, body.actorId ?? null);
    if (ended === undefined) throw AUTH_ERRORS.userNotFound();
    ctx.kickOutbox();
    res.json({ userId: id, sessionsEnded: ended });
  });

  router.put('/users/:id/role', async (req, res) => {
    const { id } = parseParams(params, req.params);
    const body = parseBody(roleBody, req.body);
    const result = await setRoleById(ctx.db, id, body.role, body.actorId ?? null);
    if (result.kind === 'not-found') throw AUTH_ERRORS.userNotFound();
    if (result.kind === 'last-admin') throw AUTH_ERRORS.lastAdmin();
    ctx.kickOutbox();
    res.json({
      userId: id,
      role: body.role,
      changed: result.kind === 'changed',
      sessionsEnded: result.kind === 'changed' ? result.sessionsEnded : 0,
    });
  });
  return router;
}
