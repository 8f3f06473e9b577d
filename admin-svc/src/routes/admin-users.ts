import { Router, type RequestHandler } from 'express';
import { parseBody, parseParams, parseQuery } from '@mana/shared';
import { banUser, changeRole, changeTier, eraseUser, liftBan, revokeSessions, unlockUser } from '../domain/actions';
import type { AdminDeps } from '../domain/context';
import { listUsers, tierOf, userData, userDetail } from '../domain/users';
import { actorOf } from './actor';
import { banBody, eraseBody, listUsersQuery, roleBody, tierBody, userIdParams } from './schemas';

/**
 * `/api/v1/admin/users*` — mounted behind requireAuth + requireRole('admin'). `recentAuth` (step-up,
 * 401 REAUTH_REQUIRED) guards the writes that cannot be undone or hand out power: erase, role, ban, tier.
 */
export function adminUserRoutes(deps: AdminDeps, recentAuth: RequestHandler): Router {
  const router = Router();

  router.get('/', async (req, res) => {
    res.json(await listUsers(deps, parseQuery(listUsersQuery, req.query)));
  });

  router.get('/:id', async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    res.json(await userDetail(deps, id));
  });

  router.get('/:id/data', async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    res.json(await userData(deps, id));
  });

  router.delete('/:id/data', recentAuth, async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    const { reason } = parseBody(eraseBody, req.body);
    res.status(202).json(await eraseUser(deps, actorOf(req), id, reason));
  });

  router.get('/:id/tier', async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    res.json(await tierOf(deps, id));
  });

  router.put('/:id/tier', recentAuth, async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    const body = parseBody(tierBody, req.body);
    res.json(await changeTier(deps, actorOf(req), id, body.tier, body.reason ?? null));
  });

  router.post('/:id/ban', recentAuth, async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    const body = parseBody(banBody, req.body);
    res.json(await banUser(deps, actorOf(req), id, body.reason, body.expiresAt ?? null));
  });

  router.delete('/:id/ban', recentAuth, async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    res.json(await liftBan(deps, actorOf(req), id));
  });

  router.post('/:id/sessions/revoke', async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    res.json(await revokeSessions(deps, actorOf(req), id));
  });

  router.put('/:id/role', recentAuth, async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    const { role } = parseBody(roleBody, req.body);
    res.json(await changeRole(deps, actorOf(req), id, role));
  });

  router.post('/:id/unlock', async (req, res) => {
    const { id } = parseParams(userIdParams, req.params);
    res.json(await unlockUser(deps, actorOf(req), id));
  });
  return router;
}
