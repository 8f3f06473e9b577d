import { and, asc, eq, gt, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import * as tables from '../db/schema';
import { GDPR_ERRORS } from '../errors';

type Db = NodePgDatabase<typeof tables>;
const HOUR_MS = 3600_000;

/**
 * Counts one export against the per-hour limit, or refuses with the seconds until the oldest export of
 * the window leaves it. The advisory lock makes count-then-insert atomic across instances.
 */
export async function takeExportSlot(db: Db, subject: string, perHour: number, now = new Date()): Promise<void> {
  const wait = await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext('gdpr.export:' || ${subject}))`);
    const since = new Date(now.getTime() - HOUR_MS);
    const recent = await tx
      .select({ at: tables.exportLog.exportedAt })
      .from(tables.exportLog)
      .where(and(eq(tables.exportLog.subject, subject), gt(tables.exportLog.exportedAt, since)))
      .orderBy(asc(tables.exportLog.exportedAt));
    if (recent.length >= perHour) {
      const oldest = recent[recent.length - perHour]?.at ?? now;
      return Math.max(1, Math.ceil((oldest.getTime() + HOUR_MS - now.getTime()) / 1000));
    }
    await tx.insert(tables.exportLog).values({ subject, exportedAt: now });
    // Old rows serve no limit any more.
    await tx.delete(tables.exportLog).where(and(eq(tables.exportLog.subject, subject), sql`${tables.exportLog.exportedAt} < ${since}`));
    return 0;
  });
  if (wait > 0) throw GDPR_ERRORS.exportRateLimited(wait);
}

/** gdpr-svc's own records about the person: past exports and erasure requests (no tokens, no hashes). */
export async function ownRecords(db: Db, subject: string) {
  const exports = await db
    .select({ exportedAt: tables.exportLog.exportedAt })
    .from(tables.exportLog)
    .where(eq(tables.exportLog.subject, subject))
    .orderBy(asc(tables.exportLog.exportedAt));
  const erasures = await db
    .select({
      requestId: tables.erasureRequests.id,
      status: tables.erasureRequests.status,
      origin: tables.erasureRequests.origin,
      requestedAt: tables.erasureRequests.requestedAt,
      completedAt: tables.erasureRequests.completedAt,
    })
    .from(tables.erasureRequests)
    .where(eq(tables.erasureRequests.subject, subject))
    .orderBy(asc(tables.erasureRequests.requestedAt));
  return {
    exports: exports.map((e) => ({ exportedAt: e.exportedAt.toISOString() })),
    erasureRequests: erasures.map((e) => ({
      ...e,
      requestedAt: e.requestedAt.toISOString(),
      completedAt: e.completedAt?.toISOString() ?? null,
    })),
  };
}
