import { and, eq } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Conn } from '../db/types';

/** The user's memberships, for the GDPR view. */
export async function organizationsOf(conn: Conn, userId: string) {
  const rows = await conn
    .select({
      id: tables.organization.id,
      name: tables.organization.name,
      slug: tables.organization.slug,
      role: tables.member.role,
      joinedAt: tables.member.createdAt,
    })
    .from(tables.member)
    .innerJoin(tables.organization, eq(tables.organization.id, tables.member.organizationId))
    .where(eq(tables.member.userId, userId));
  return rows.map((r) => ({ ...r, joinedAt: r.joinedAt.toISOString() }));
}

/** The user's role in the organization, or undefined when not a member. */
export async function memberRole(conn: Conn, orgId: string, userId: string): Promise<string | undefined> {
  const [row] = await conn
    .select({ role: tables.member.role })
    .from(tables.member)
    .where(and(eq(tables.member.organizationId, orgId), eq(tables.member.userId, userId)))
    .limit(1);
  return row?.role;
}
