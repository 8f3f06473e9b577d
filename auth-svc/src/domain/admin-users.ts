import { and, asc, count, desc, eq, gt, max, ne, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Db } from '../db/types';
import type { Role } from './roles';
import { recordSecurityEvent } from './security-events';

/** One directory row as admin-svc's resync reads it. */
export interface DirectoryUser {
  id: string;
  email: string;
  name: string;
  role: string;
  emailVerified: boolean;
  createdAt: string;
  banned: boolean;
  banReason: string | null;
  banExpiresAt: string | null;
}

/** A keyset page of every user, ordered by id (the cursor is the last id of the previous page). */
export async function usersPage(
  db: Db,
  cursor: string | undefined,
  limit: number,
): Promise<{ users: DirectoryUser[]; nextCursor: string | null }> {
  const u = tables.user;
  const b = tables.userBans;
  const rows = await db
    .select({ user: u, banReason: b.reason, banExpiresAt: b.expiresAt })
    .from(u)
    .leftJoin(b, and(eq(b.userId, u.id), sql`(${b.expiresAt} is null or ${b.expiresAt} > now())`))
    .where(cursor ? gt(u.id, cursor) : undefined)
    .orderBy(asc(u.id))
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  return {
    users: page.map((r) => ({
      id: r.user.id,
      email: r.user.email,
      name: r.user.name,
      role: r.user.role,
      emailVerified: r.user.emailVerified,
      createdAt: r.user.createdAt.toISOString(),
      banned: r.banReason !== null,
      banReason: r.banReason,
      banExpiresAt: r.banExpiresAt?.toISOString() ?? null,
    })),
    nextCursor: rows.length > limit ? (page.at(-1)?.user.id ?? null) : null,
  };
}

/** Live sessions and the last successful sign-in, for the admin's user detail. */
export async function userActivity(db: Db, userId: string): Promise<{ sessions: number; lastSignInAt: string | null } | undefined> {
  const [user] = await db.select({ id: tables.user.id }).from(tables.user).where(eq(tables.user.id, userId));
  if (!user) return undefined;
  const [live] = await db
    .select({ n: count(), last: max(tables.session.createdAt) })
    .from(tables.session)
    .where(and(eq(tables.session.userId, userId), gt(tables.session.expiresAt, sql`now()`)));
  const [signIn] = await db
    .select({ at: tables.securityEvents.createdAt })
    .from(tables.securityEvents)
    .where(and(eq(tables.securityEvents.userId, userId), eq(tables.securityEvents.type, 'sign_in_success')))
    .orderBy(desc(tables.securityEvents.createdAt))
    .limit(1);
  const last = [signIn?.at, live?.last ? new Date(live.last) : undefined].filter((d): d is Date => d instanceof Date);
  const latest = last.sort((a, b) => b.getTime() - a.getTime())[0];
  return { sessions: Number(live?.n ?? 0), lastSignInAt: latest?.toISOString() ?? null };
}

export type RoleChange =
  | { kind: 'not-found' }
  | { kind: 'last-admin' }
  | { kind: 'unchanged'; role: string }
  | { kind: 'changed'; from: string; role: Role; sessionsEnded: number };

/**
 * The set-role command's logic (src/domain/roles.ts) by user id, for admin-svc: the user trigger writes
 * user.updated.v1, and removing admin ends the user's sessions. Role changes are serialized by an advisory
 * lock so two demotions at once cannot remove the last admin.
 */
export async function setRoleById(db: Db, userId: string, role: Role, actorId: string | null): Promise<RoleChange> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext('auth.user.role'))`);
    const [current] = await tx
      .select({ id: tables.user.id, role: tables.user.role })
      .from(tables.user)
      .where(eq(tables.user.id, userId))
      .for('update');
    if (!current) return { kind: 'not-found' };
    if (current.role === role) return { kind: 'unchanged', role };
    if (current.role === 'admin') {
      const [others] = await tx
        .select({ n: count() })
        .from(tables.user)
        .where(and(eq(tables.user.role, 'admin'), ne(tables.user.id, userId)));
      if (Number(others?.n ?? 0) === 0) return { kind: 'last-admin' };
    }
    await tx
      .update(tables.user)
      .set({ role, updatedAt: sql`now()` })
      .where(eq(tables.user.id, userId));
    let sessionsEnded = 0;
    if (current.role === 'admin')
      sessionsEnded = (await tx.delete(tables.session).where(eq(tables.session.userId, userId)).returning({ id: tables.session.id }))
        .length;
    await recordSecurityEvent(tx, {
      userId,
      type: 'admin_role_changed',
      context: { from: current.role, to: role, by: 'admin', actorId, sessionsEnded },
    });
    return { kind: 'changed', from: current.role, role, sessionsEnded };
  });
}
