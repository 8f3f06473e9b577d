import { and, eq, gte, inArray } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { createEvent, enqueueEvent } from '@mana/shared';
import * as tables from '../db/schema';
import type { GdprSecrets } from './secrets';

type Db = NodePgDatabase<typeof tables>;

/**
 * After a participant's schema was restored from a backup taken at `since`, the people erased since then are
 * back in it. gdpr-svc forgot their user ids (only the keyed `subject` stays), so the operator lists the user
 * ids the restored schema holds; each whose subject belongs to an erasure completed at or after `since` is
 * asked again under its original requestId: participants that had erased answer with their stored counts,
 * the restored one erases now, and the completed request (and its receipt) stays as it is.
 */
export async function replayCompletedErasures(
  db: Db,
  secrets: Pick<GdprSecrets, 'subject'>,
  candidateUserIds: readonly string[],
  since: Date,
): Promise<string[]> {
  const bySubject = new Map(candidateUserIds.map((id) => [secrets.subject(id), id]));
  if (bySubject.size === 0) return [];
  return db.transaction(async (tx) => {
    const r = tables.erasureRequests;
    const matches = await tx
      .select({ id: r.id, subject: r.subject })
      .from(r)
      .where(and(eq(r.status, 'completed'), gte(r.completedAt, since), inArray(r.subject, [...bySubject.keys()])));
    for (const m of matches) {
      const userId = bySubject.get(m.subject);
      if (userId) await enqueueEvent(tx, tables.outbox, createEvent('user.erasure.requested.v1', { requestId: m.id, userId }));
    }
    return matches.map((m) => m.id);
  });
}
