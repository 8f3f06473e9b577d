import { eq, sql } from 'drizzle-orm';
import { subscribeErasureParticipant, type ErasureCounts, type ErasureTx } from '@mana/shared';
import { lockForErasure } from '../db/directory';
import { directoryUsers, erasedUsers, outbox, processedMessages } from '../db/schema';
import { enterAppRole } from '../db/scope';
import { pseudonymOf } from '../domain/pseudonym';
import type { ConsumerDeps } from './deps';

export const ERASURE_QUEUE = 'admin';

/**
 * The directory row goes; the audit entries naming the user (as target or as actor) keep a keyed pseudonym
 * instead of the id, so the trail stays grouped without naming anyone; the pseudonym is remembered so a late
 * event about the user cannot bring the row back. The locks order it with every write of the user's row (an
 * event's, the resync's): see db/directory.ts.
 */
export function eraseDirectoryUser(secret: string) {
  return async (tx: ErasureTx, userId: string): Promise<Partial<ErasureCounts>> => {
    await enterAppRole(tx);
    await lockForErasure(tx, userId);
    const pseudonym = pseudonymOf(secret, userId);
    const deleted = await tx.delete(directoryUsers).where(eq(directoryUsers.id, userId)).returning({ id: directoryUsers.id });
    await tx.insert(erasedUsers).values({ pseudonym }).onConflictDoNothing();
    const result = (await tx.execute(sql`select admin.pseudonymize_audit(${userId}, ${pseudonym}) as n`)) as { rows: { n: string }[] };
    return { deleted: { directory_users: deleted.length }, pseudonymized: { audit_log: Number(result.rows[0]?.n ?? 0) } };
  };
}

export async function subscribeErasure(deps: ConsumerDeps): Promise<void> {
  await subscribeErasureParticipant({
    service: 'admin',
    queue: ERASURE_QUEUE,
    bus: deps.bus,
    db: deps.db,
    outbox,
    processedMessages,
    relay: deps.relay,
    logger: deps.logger,
    erase: eraseDirectoryUser(deps.pseudonymSecret),
  });
}
