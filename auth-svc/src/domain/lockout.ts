import { createHash } from 'node:crypto';
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

/**
 * Counters are per normalized email, whether an account exists or not (no enumeration). An "email" longer than any
 * real one (a sign-in's body is counted before Better Auth validates it) is counted under its SHA-256, so a huge one
 * cannot overflow the primary key's index.
 */
export function lockoutKey(email: string): string {
  const key = normalizeEmail(email);
  return key.length > 254 ? `sha256:${createHash('sha256').update(key).digest('hex')}` : key;
}

/** One attempt, counted before it is checked (`chargeAttempt`). */
export interface Charge {
  /** The email is locked now: refuse the attempt without checking it. */
  locked: boolean;
  /** The attempts of the current window, this one included (0 while locked). */
  failures: number;
  /** The window the attempt was charged to (`window_started_at` as PostgreSQL's text: microseconds kept). */
  window: string;
}

const t = tables.signInLockouts;
const windowExpired = sql`${t.windowStartedAt} < now() - make_interval(mins => ${sql.placeholder('windowMinutes')}::int)`;
const lockedNow = sql`coalesce(${t.lockedUntil} > now(), false)`;

/** The counters a success may clear or a charge be given back to: not during a running lock (nothing ends a lock early but an admin). */
export const unlockedCounter = or(isNull(t.lockedUntil), lte(t.lockedUntil, sql`now()`));

const chargeStatement = preparedStatement((db) =>
  db
    .insert(t)
    .values({ email: sql.placeholder('email'), failures: 1 })
    .onConflictDoUpdate({
      target: t.email,
      set: {
        failures: sql`case when ${lockedNow} then ${t.failures} when ${windowExpired} then 1 else ${t.failures} + 1 end`,
        windowStartedAt: sql`case when not ${lockedNow} and ${windowExpired} then now() else ${t.windowStartedAt} end`,
        updatedAt: sql`now()`,
      },
    })
    .returning({ locked: lockedNow, failures: t.failures, window: sql<string>`${t.windowStartedAt}::text` })
    .prepare('auth_lockout_charge'),
);

/**
 * Counts an attempt as a failure *before* its password or code is checked, in one statement: checking first and
 * counting after let every attempt of a parallel burst pass the check before any of them was counted (the limit
 * was then the limit plus the burst). A success takes the count back (`clearFailures`); a failure that reached
 * the limit takes the lock (`lockAtLimit`). An attempt beyond the limit is refused unchecked.
 */
export async function chargeAttempt(db: Db, email: string, policy: LockoutPolicy): Promise<Charge> {
  const [row] = await chargeStatement(db).execute({ email: lockoutKey(email), windowMinutes: policy.windowMinutes });
  return { locked: row?.locked === true, failures: row?.failures ?? 0, window: row?.window ?? '' };
}

/** Whether a charged attempt must be refused unchecked: the email is locked, or the attempt is beyond the limit. */
export function refused(charge: Charge, policy: LockoutPolicy): boolean {
  return charge.locked || charge.failures > policy.maxAttempts;
}

/**
 * Takes the lock once the charged failures reached the limit; returns true when this call took it. Only one of
 * several concurrent callers takes it (the update is guarded), so the user gets one mail.
 */
export async function lockAtLimit(conn: Conn, email: string, policy: LockoutPolicy): Promise<boolean> {
  const key = lockoutKey(email);
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

/**
 * An attempt that ended without being a guess (refused before its password or code was checked: a malformed
 * request, a policy error, beyond the limit) gives its charge back; never below zero, never during a lock, and only
 * to the window it was charged to: a charge given back after its window ran out must not take one from the next
 * window (a flood timed at the window's end would get that many more checks). Clearing instead would let a request
 * that fails on purpose reset the count of the guesses before it.
 */
export async function unchargeAttempt(conn: Conn, charged: { email: string; window: string }): Promise<void> {
  await conn
    .update(t)
    .set({ failures: sql`greatest(${t.failures} - 1, 0)` })
    .where(and(eq(t.email, lockoutKey(charged.email)), eq(t.windowStartedAt, sql`${charged.window}::timestamptz`), unlockedCounter));
}

/** A full sign-in (or a password re-check) succeeded: the failures so far no longer count (a running lock stays). */
export async function clearFailures(conn: Conn, email: string): Promise<void> {
  await conn.delete(t).where(and(eq(t.email, lockoutKey(email)), unlockedCounter));
}

/**
 * The counts completed sign-ins owe a clear, by their request's Better Auth context (`ctx.context`). The sign-in's
 * audit statement deletes it along with the event it records (`recordSignIn`, one statement fewer per sign-in);
 * whatever no audit took is cleared after it (`takeOwedClear` in the settling plugin).
 */
const owedClears = new WeakMap<object, string>();

export function oweClear(request: object, email: string): void {
  owedClears.set(request, email);
}

/** The email whose count a request's completed sign-in owes a clear, once: whoever takes it clears it. */
export function takeOwedClear(request: object): string | undefined {
  const email = owedClears.get(request);
  owedClears.delete(request);
  return email;
}

/** Admin unlock: forgets the counter and any lock; true when the email was locked. */
export async function unlock(conn: Conn, email: string): Promise<boolean> {
  const gone = await conn
    .delete(t)
    .where(eq(t.email, lockoutKey(email)))
    .returning({ lockedUntil: t.lockedUntil });
  return gone.some((r) => r.lockedUntil !== null && r.lockedUntil.getTime() > Date.now());
}
