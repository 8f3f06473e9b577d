import { and, eq, isNull, lte, or, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import { preparedStatement } from '../db/prepared';
import type { Conn, Db } from '../db/types';
import { normalizeEmail } from './users';

export interface LockoutPolicy {
  maxAttempts: number;
  windowMinutes: number;
  durationMinutes: number;
}

/** Counters are per normalized email, whether an account exists or not (no enumeration). */
export const lockoutKey = normalizeEmail;

export async function isLocked(db: Db, email: string): Promise<boolean> {
  return (await lockoutState(db, email)).locked;
}

export interface LockoutState {
  /** The email is locked now. */
  locked: boolean;
  /** The email has a row: failures counting (or a lock); a successful sign-in has something to clear. */
  counting: boolean;
}

const lockoutStateStatement = preparedStatement((db) =>
  db
    .select({ locked: sql<boolean>`coalesce(${tables.signInLockouts.lockedUntil} > now(), false)` })
    .from(tables.signInLockouts)
    .where(eq(tables.signInLockouts.email, sql.placeholder('email')))
    .limit(1)
    .prepare('auth_lockout_state'),
);

/** Whether the email is locked, and whether there is anything a successful sign-in would clear — one read. */
export async function lockoutState(db: Db, email: string): Promise<LockoutState> {
  const [row] = await lockoutStateStatement(db).execute({ email: lockoutKey(email) });
  return { locked: row?.locked === true, counting: row !== undefined };
}

/**
 * Counts one failure; returns true when this failure locked the email. A failure after the window
 * starts a new window. Only one of several concurrent failures reaching the limit takes the lock
 * (the update is guarded), so the user gets one mail.
 */
export async function recordFailure(conn: Conn, email: string, policy: LockoutPolicy): Promise<boolean> {
  const key = lockoutKey(email);
  const t = tables.signInLockouts;
  const windowExpired = sql`${t.windowStartedAt} < now() - make_interval(mins => ${policy.windowMinutes})`;
  const [row] = await conn
    .insert(t)
    .values({ email: key, failures: 1 })
    .onConflictDoUpdate({
      target: t.email,
      set: {
        failures: sql`case when ${windowExpired} then 1 else ${t.failures} + 1 end`,
        windowStartedAt: sql`case when ${windowExpired} then now() else ${t.windowStartedAt} end`,
        updatedAt: sql`now()`,
      },
    })
    .returning({ failures: t.failures });
  if (!row || row.failures < policy.maxAttempts) return false;
  const locked = await conn
    .update(t)
    .set({
      lockedUntil: sql`now() + make_interval(mins => ${policy.durationMinutes})`,
      failures: 0,
      windowStartedAt: sql`now()`,
    })
    .where(and(eq(t.email, key), sql`${t.failures} >= ${policy.maxAttempts}`, or(isNull(t.lockedUntil), lte(t.lockedUntil, sql`now()`))))
    .returning({ email: t.email });
  // Stale counters of emails nobody tried for a day go (cheap: the table holds recent failures only).
  if (Math.random() < 0.02)
    await conn
      .delete(t)
      .where(and(lte(t.updatedAt, sql`now() - interval '1 day'`), or(isNull(t.lockedUntil), lte(t.lockedUntil, sql`now()`))));
  return locked.length > 0;
}

/** A full sign-in succeeded: the failures so far no longer count (a running lock stays). */
export async function clearFailures(conn: Conn, email: string): Promise<void> {
  const t = tables.signInLockouts;
  await conn.delete(t).where(and(eq(t.email, lockoutKey(email)), or(isNull(t.lockedUntil), lte(t.lockedUntil, sql`now()`))));
}

/** Admin unlock: forgets the counter and any lock; true when the email was locked. */
export async function unlock(conn: Conn, email: string): Promise<boolean> {
  const t = tables.signInLockouts;
  const gone = await conn
    .delete(t)
    .where(eq(t.email, lockoutKey(email)))
    .returning({ lockedUntil: t.lockedUntil });
  return gone.some((r) => r.lockedUntil !== null && r.lockedUntil.getTime() > Date.now());
}
