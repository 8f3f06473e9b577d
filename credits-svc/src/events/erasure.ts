import { createHmac } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import { subscribeErasureParticipant, type ErasureCounts, type ErasureTx, type EventBus, type OutboxRelay } from '@mana/shared';
import { grants, outbox, processedMessages, reservationAllocations, reservations, wallets } from '../db/schema';
import { enterOwnerScope, isId, leaveOwnerScope, userOwner, type CreditsDb, type Owner, type Tx } from '../db/scope';
import { post } from '../domain/ledger';

export const ERASURE_QUEUE = 'credits';

export interface ErasureDeps {
  db: CreditsDb;
  bus: EventBus;
  relay?: OutboxRelay;
  logger: Logger;
  /** CREDITS_PSEUDONYM_SECRET */
  pseudonymSecret: string;
}

/** A keyed pseudonym: stable per user (the bookkeeping stays grouped), unlinkable without the secret. */
export function pseudonymFor(secret: string, userId: string): string {
  return `erased:${createHmac('sha256', secret).update(userId).digest('hex')}`;
}

/**
 * Closes the wallet in the ledger before it goes: what is left (available and held) moves to breakage,
 * so the retained, pseudonymized ledger still balances to zero for the closed wallet.
 */
async function closeWallet(tx: Tx, owner: Owner): Promise<void> {
  const [w] = await tx.select().from(wallets).where(eq(wallets.owner, owner)).for('update');
  if (!w || (w.available === 0 && w.held === 0)) return;
  await post(tx, { ...w, owner, available: 0, held: 0 }, { kind: 'close', amount: -w.available, description: 'Wallet closed on erasure' }, [
    { account: 'available', amount: -w.available },
    { account: 'held', amount: -w.held },
    { account: 'system:breakage', amount: w.available + w.held },
  ]);
}

/**
 * The wallet, its lots and holds go; the ledger and the purchases stay for bookkeeping with the user id
 * replaced by the keyed pseudonym (also where the user acted on an organization's wallet).
 */
export function eraseCredits(secret: string) {
  return async (erasureTx: ErasureTx, userId: string): Promise<Partial<ErasureCounts>> => {
    if (!isId(userId)) return {};
    const tx = erasureTx as unknown as Tx;
    const owner = userOwner(userId);
    await enterOwnerScope(tx, owner);
    await closeWallet(tx, owner);
    const allocations = await tx
      .delete(reservationAllocations)
      .where(eq(reservationAllocations.owner, owner))
      .returning({ id: reservationAllocations.grantId });
    const holds = await tx.delete(reservations).where(eq(reservations.owner, owner)).returning({ id: reservations.id });
    const lots = await tx.delete(grants).where(eq(grants.owner, owner)).returning({ id: grants.id });
    const wallet = await tx.delete(wallets).where(eq(wallets.owner, owner)).returning({ owner: wallets.owner });
    const r = await tx.execute<{ ledger_transactions: string; ledger_postings: string; purchases: string }>(
      sql`select * from credits.pseudonymize_user(${userId}, ${pseudonymFor(secret, userId)})`,
    );
    await leaveOwnerScope(tx);
    const row = r.rows[0];
    return {
      deleted: { wallets: wallet.length, grants: lots.length, reservations: holds.length, reservation_allocations: allocations.length },
      retained: {
        ledger_transactions: Number(row?.ledger_transactions ?? 0),
        ledger_postings: Number(row?.ledger_postings ?? 0),
        purchases: Number(row?.purchases ?? 0),
      },
    };
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
