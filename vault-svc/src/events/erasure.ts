import { randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import { consumeOnce, createEvent, enqueueEvent, type EventBus, type EventEnvelope, type OutboxRelay } from '@mana/shared';
import { encryptionVaults, outbox, processedMessages } from '../db/schema';
import { enterUserScope, leaveUserScope, type VaultDb } from '../db/scope';

export const ERASURE_QUEUE = 'vault';

export interface ErasureDeps {
  db: VaultDb;
  bus: EventBus;
  relay?: OutboxRelay;
  logger: Logger;
}

/**
 * Crypto-shredding: deleting the vault row destroys the only server-side wrap of the MK, so whatever the
 * user encrypted with it is unreadable everywhere, backups included. The audit trail stays, with the user id
 * replaced by a random pseudonym (unlinkable to the user, but the rows stay grouped). The completion event
 * is written to the outbox in the same transaction.
 */
export async function handleErasure(deps: ErasureDeps, event: EventEnvelope<'user.erasure.requested.v1'>): Promise<boolean> {
  const { requestId, userId } = event.data;
  const done = await consumeOnce(deps.db, processedMessages, ERASURE_QUEUE, event.id, async (tx) => {
    await enterUserScope(tx, userId);
    const deleted = await tx
      .delete(encryptionVaults)
      .where(eq(encryptionVaults.userId, userId))
      .returning({ userId: encryptionVaults.userId });
    const pseudonym = `erased:${randomUUID()}`;
    const result = await tx.execute<{ n: string }>(sql`select vault.pseudonymize_audit(${userId}, ${pseudonym}) as n`);
    const pseudonymized = Number(result.rows[0]?.n ?? 0);
    await leaveUserScope(tx);
    await enqueueEvent(
      tx,
      outbox,
      createEvent('user.erasure.completed.v1', {
        requestId,
        userId,
        service: 'vault',
        deleted: { encryption_vaults: deleted.length },
        pseudonymized: { encryption_vault_audit: pseudonymized },
      }),
    );
  });
  if (done) deps.relay?.kick();
  deps.logger.info({ requestId, duplicate: !done }, 'erasure request handled');
  return done;
}

export async function subscribeErasure(deps: ErasureDeps): Promise<void> {
  await deps.bus.subscribe({
    queue: ERASURE_QUEUE,
    bindings: ['user.erasure.requested.v1'],
    handler: async (event) => {
      if (event.type !== 'user.erasure.requested.v1') return;
      await handleErasure(deps, event as EventEnvelope<'user.erasure.requested.v1'>);
    },
  });
}
