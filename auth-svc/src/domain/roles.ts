import { eq, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Db } from '../db/types';
import { recordSecurityEvent } from './security-events';
import { normalizeEmail } from './users';

export const ROLES = ['user', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export type SetRoleResult =
  { kind: 'not-found' } | { kind: 'unchanged'; userId: string } | { kind: 'changed'; userId: string; from: string; sessionsEnded: number };

/**
 * Grants or removes a role by email. The `user` trigger writes user.updated.v1 in the same
 * transaction. Removing admin also ends the user's sessions, so admin tokens already handed out
 * stop working now instead of in up to 15 minutes.
 */
export async function setRoleByEmail(db: Db, email: string, role: Role): Promise<SetRoleResult> {
  return db.transaction(async (tx) => {
    const [current] = await tx
      .select({ id: tables.user.id, role: tables.user.role })
      .from(tables.user)
      .where(eq(tables.user.email, normalizeEmail(email)))
      .for('update');
    if (!current) return { kind: 'not-found' };
    if (current.role === role) return { kind: 'unchanged', userId: current.id };
    await tx
      .update(tables.user)
      .set({ role, updatedAt: sql`now()` })
      .where(eq(tables.user.id, current.id));
    let sessionsEnded = 0;
    if (current.role === 'admin')
      sessionsEnded = (await tx.delete(tables.session).where(eq(tables.session.userId, current.id)).returning({ id: tables.session.id }))
        .length;
    await recordSecurityEvent(tx, {
      userId: current.id,
      type: 'admin_role_changed',
      context: { from: current.role, to: role, by: 'operator', sessionsEnded },
    });
    return { kind: 'changed', userId: current.id, from: current.role, sessionsEnded };
  });
}
