import { createHash } from 'node:crypto';
import { and, eq, ne, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import { preparedStatement } from '../db/prepared';
import type { Db } from '../db/types';
import { securityEventRecorded } from '../metrics';
import { lockoutKey, unlockedCounter } from './lockout';
import type { RequestMeta } from './security-events';

/** The device a sign-in came from, as `known_devices` stores it: SHA-256 of the user agent (never the agent). */
export function deviceFingerprint(userAgent: string | null | undefined): string {
  return createHash('sha256')
    .update(userAgent ?? '')
    .digest('base64url');
}

const recordSignInStatement = preparedStatement((db) => {
  const kd = tables.knownDevices;
  const userId = sql.placeholder('userId');
  const fingerprint = sql.placeholder('fingerprint');
  const event = db.$with('event').as(
    db
      .insert(tables.securityEvents)
      .values({
        userId,
        type: 'sign_in_success',
        ipAddress: sql.placeholder('ipAddress'),
        userAgent: sql.placeholder('userAgent'),
        context: sql.placeholder('context'),
      })
      .returning({ id: tables.securityEvents.id }),
  );
  const seen = db.$with('seen').as(
    db
      .insert(kd)
      .values({ userId, fingerprint })
      .onConflictDoUpdate({ target: [kd.userId, kd.fingerprint], set: { lastSeenAt: sql`now()` } })
      .returning({ inserted: sql<boolean>`(xmax = 0)`.as('inserted') }),
  );
  // The lockout count the sign-in clears (none when `clearEmail` is null: a magic link or passkey sign-in).
  const cleared = db.$with('cleared').as(
    db
      .delete(tables.signInLockouts)
      .where(and(eq(tables.signInLockouts.email, sql.placeholder('clearEmail')), unlockedCounter))
      .returning({ email: tables.signInLockouts.email }),
  );
  // The statement's snapshot does not hold the row `seen` inserts: the other devices are the ones from before.
  const others = db
    .select({ one: sql`1` })
    .from(kd)
    .where(and(eq(kd.userId, userId), ne(kd.fingerprint, fingerprint)));
  return db
    .with(event, seen, cleared)
    .select({ inserted: seen.inserted, others: sql<boolean>`exists (${others})` })
    .from(seen)
    .prepare('auth_record_sign_in');
});

/**
 * A completed sign-in: its `sign_in_success` event, the device it came from (`last_seen_at`, or a new row) and the
 * clear of its email's lockout count (`clearLockoutOf`, owed by a password or second-factor sign-in), in one
 * statement — the insert, the upsert and the delete are data-modifying CTEs. `newDevice` is true when the device is
 * new to an account that has signed in from others before (the first device of an account is not news).
 */
export async function recordSignIn(
  db: Db,
  e: { userId: string; method: string; meta: RequestMeta; clearLockoutOf?: string },
): Promise<{ newDevice: boolean }> {
  const context = { method: e.method };
  const [row] = await recordSignInStatement(db).execute({
    userId: e.userId,
    fingerprint: deviceFingerprint(e.meta.userAgent),
    ipAddress: e.meta.ipAddress ?? null,
    userAgent: e.meta.userAgent?.slice(0, 512) ?? null,
    context,
    clearEmail: e.clearLockoutOf === undefined ? null : lockoutKey(e.clearLockoutOf),
  });
  securityEventRecorded.emit('sign_in_success', context);
  return { newDevice: row?.inserted === true && row.others === true };
}
