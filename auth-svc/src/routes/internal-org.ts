import { Router } from 'express';
import { and, eq } from 'drizzle-orm';
import { z } from 'zod';
import { parseParams, requireServiceKey } from '@mana/shared';
import type { AuthContext } from '../context';
import * as tables from '../db/schema';
import type { Conn } from '../db/types';

const memberParams = z.object({ orgId: z.string().min(1).max(128), userId: z.string().min(1).max(128) });

/** The user's memberships, for the GDPR view. */
export async function organizationsOf(conn: Conn, userId: string) {
  const rows = await conn
    .select({ id: tables.organization.id, name: tables.organization.name, slug: tables.organization.slug, role: tables.member.role, joinedAt: tables.member.createdAt })
    .from(tables.member)
    .innerJoin(tables.organization, eq(tables.organization.id, tables.member.organizationId))
    .where(eq(tables.member.userId, userId));
  return rows.map((r) => ({ ...r, joinedAt: r.joinedAt.toISOString() }));
}

/** GET /api/v1/internal/org/:orgId/member/:userId (service key). */
export function internalOrgRoutes(ctx: AuthContext): Router {
  const router = Router();
  router.use(requireServiceKey(ctx.config.MANA_SERVICE_KEY));
  // credits-svc asks whether a user may act for an organization.
  router.get('/org/:orgId/member/:userId', async (req, res) => {
    const { orgId, userId } = parseParams(memberParams, req.params);
    const [row] = await ctx.db
      .select({ role: tables.member.role })
      .from(tables.member)
      .where(and(eq(tables.member.organizationId, orgId), eq(tables.member.userId, userId)))
      .limit(1);
    res.json(row ? { member: true, role: row.role } : { member: false, role: null });
  });
  return router;
}
