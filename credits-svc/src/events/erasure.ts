import { sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import {
  keyedPseudonym,
  subscribeErasureParticipant,
  type ErasureCounts,
  type ErasureTx,
  type EventBus,
  type OutboxRelay,
} from '@mana/shared';
import { outbox, processedMessages } from '../db/schema';
import { enterOwnerScope, isId, leaveOwnerScope, userOwner, type CreditsDb, type Tx } from '../db/scope';

export const ERASURE_QUEUE = 'credits';

export interface ErasureDeps {
  db: CreditsDb;
  bus: EventBus;
  relay?: OutboxRelay;
  logger: Logger;
  /** CREDITS_PSEUDONYM_SECRET */
  pseudonymSecret: string;
}

/** The keyed pseudonym of an erased user (CREDITS_PSEUDONYM_SECRET): the retained bookkeeping stays grouped. */
export function pseudonymFor(secret: string, userId: string): string {
  return keyedPseudonym(secret, userId);
}

/**
 * The wallet is closed to breakage in the ledger, then it, its lots and holds go; the ledger and the purchases stay
 * for bookkeeping with the user id replaced by the keyed pseudonym (also where the user acted on an organization's
 * wallet) and without their free text. One statement: `credits.erase_user` (migration 0007) in the user's scope.
 */
export function eraseCredits(secret: string) {
  return async (erasureTx: ErasureTx, userId: string): Promise<Partial<ErasureCounts>> => {
    if (!isId(userId)) return {};
    const tx = erasureTx as unknown as Tx;
    await enterOwnerScope(tx, userOwner(userId));
    const r = await tx.execute<{ counts: ErasureCounts }>(
      sql`select credits.erase_user(${userId}, ${pseudonymFor(secret, userId)}) as counts`,
    );
    await leaveOwnerScope(tx);
    return r.rows[0]?.counts ?? {};
  };
}

export async function subscribeErasure(deps: ErasureDeps): Promise<void> {
  await subscribeErasureParticipant({
    service: 'credits',
    queue: ERASURE_QUEUE,
    outbox,
    processedMessages,
    db: deps.db,
    bus: deps.bus,
    relay: deps.relay,
    logger: deps.logger,
    erase: eraseCredits(deps.pseudonymSecret),
  });
}
