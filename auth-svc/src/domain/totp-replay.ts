import { createHash, randomUUID } from 'node:crypto';
import { and, eq, gt, lte, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Db } from '../db/types';

/**
 * A TOTP code is accepted once (ASVS 6.5.1). Better Auth accepts a code for the previous, current
 * and next 30 s step, so a used code is remembered for two minutes — in Better Auth's verification
 * table (no schema of our own), keyed by user and a hash of the code.
 */
const REMEMBER_MS = 120_000;

const identifierOf = (userId: string, code: string) =>
  `totp-used:${userId}:${createHash('sha256').update(`${userId}:${code}`).digest('base64url')}`;

/**
 * Claims the code for this user: true the first time, false when it was claimed within the window.
 * Atomic across instances (a transaction-scoped advisory lock on the identifier).
 */
export async function claimTotpCode(db: Db, userId: string, code: string, now = new Date()): Promise<boolean> {
  const identifier = identifierOf(userId, code);
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${identifier}, 0))`);
    await tx
      .delete(tables.verification)
      .where(and(eq(tables.verification.identifier, identifier), lte(tables.verification.expiresAt, now)));
    const [used] = await tx
      .select({ id: tables.verification.id })
      .from(tables.verification)
      .where(and(eq(tables.verification.identifier, identifier), gt(tables.verification.expiresAt, now)))
      .limit(1);
    if (used) return false;
    await tx.insert(tables.verification).values({
      id: randomUUID(),
      identifier,
      value: 'used',
      expiresAt: new Date(now.getTime() + REMEMBER_MS),
      createdAt: now,
      updatedAt: now,
    });
    return true;
  });
}

/** Gives a claimed code back (it turned out wrong: a wrong code must not block the right one). */
export async function releaseTotpCode(db: Db, userId: string, code: string): Promise<void> {
  await db.delete(tables.verification).where(eq(tables.verification.identifier, identifierOf(userId, code)));
}
