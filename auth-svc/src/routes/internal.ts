import { Router } from 'express';
import { asc, eq, gt, lt, sql } from 'drizzle-orm';
import { z } from 'zod';
import { parseParams, requireServiceKey } from '@mana/shared';
import type { AuthContext } from '../context';
import * as tables from '../db/schema';
import { AUTH_ERRORS } from '../domain/errors';
import { listSessions } from '../domain/sessions';
import { publicSession, publicUser } from '../domain/views';
import { organizationsOf } from './internal-org';
import { findMatrixLink, matrixView } from '../oidc/matrix';

const userParams = z.object({ id: z.string().min(1).max(128) });

/** /api/v1/internal (X-Service-Key): what other services may ask auth-svc. */
export function internalRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.use(requireServiceKey(ctx.config.MANA_SERVICE_KEY));

  // The gateway's denylist: revocations whose last access token has not expired yet.
  router.get('/sessions/revoked', async (_req, res) => {
    await ctx.db.delete(tables.sessionRevocations).where(lt(tables.sessionRevocations.expiresAt, sql`now() - interval '1 hour'`));
    const rows = await ctx.db
      .select()
      .from(tables.sessionRevocations)
      .where(gt(tables.sessionRevocations.expiresAt, sql`now()`))
      .orderBy(asc(tables.sessionRevocations.revokedAt));
    res.json({
      revocations: rows.map((r) => ({ sessionId: r.sessionId, userId: r.userId, expiresAt: r.expiresAt.toISOString() })),
    });
  });

  // Everything auth-svc holds about a user, for the GDPR view (never a secret).
  router.get('/users/:id/data', async (req, res) => {
    const { id } = parseParams(userParams, req.params);
    const [user] = await ctx.db.select().from(tables.user).where(eq(tables.user.id, id)).limit(1);
    if (!user) throw AUTH_ERRORS.userNotFound();
    const accounts = await ctx.db
      .select({
        id: tables.account.id,
        providerId: tables.account.providerId,
        accountId: tables.account.accountId,
        scope: tables.account.scope,
        hasPassword: sql<boolean>`${tables.account.password} is not null`,
        createdAt: tables.account.createdAt,
        updatedAt: tables.account.updatedAt,
      })
      .from(tables.account)
      .where(eq(tables.account.userId, id));
    const sessions = await listSessions(ctx.db, id);
    const [events] = await ctx.db
      .select({ n: sql<number>`count(*)::int` })
      .from(tables.securityEvents)
      .where(eq(tables.securityEvents.userId, id));
    res.json({
      user: publicUser(user),
      accounts: accounts.map((a) => ({ ...a, createdAt: a.createdAt.toISOString(), updatedAt: a.updatedAt.toISOString() })),
      sessions: sessions.map((s) => publicSession(s)),
      twoFactorEnabled: user.twoFactorEnabled === true,
      organizations: await organizationsOf(ctx.db, id),
      securityEventCount: events?.n ?? 0,
      matrix: matrixView(await findMatrixLink(ctx.db, id)),
    });
  });

  return router;
}
