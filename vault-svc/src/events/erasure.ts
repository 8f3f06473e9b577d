import { randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { QueryResult } from 'pg';
import {
  subscribeErasureParticipant,
  type ErasureCounts,
  type ErasureParticipantOptions,
  type ErasureTx,
  type EventBus,
  type OutboxRelay,
} from '@mana/shared';
import { encryptionVaults, erasedUsers, outbox, processedMessages } from '../db/schema';
import { enterUserScope, leaveUserScope, type VaultDb } from '../db/scope';
import { pseudonymFor } from '../domain/pseudonym';

export const ERASURE_QUEUE = 'vault';

export interface ErasureDeps {
  db: VaultDb;
  bus: EventBus;
  relay?: OutboxRelay;
  logger: Logger;
  /** VAULT_PSEUDONYM_SECRET: keys the tombstone's pseudonym. */
  pseudonymSecret: string;
}

/**
 * Crypto-shredding: deleting the vault row destroys the only server-side wrap of the MK, so whatever the
 * user encrypted with it is unreadable everywhere, backups included. The audit trail stays, with the user id
 * replaced by a random pseudonym (unlinkable to the user, but the rows stay grouped). The shared participant
 * helper runs it once per request and writes the completion event in the same transaction.
 * The delete comes first: every audit insert holds the vault row FOR KEY SHARE (db/audit.ts, append_fetch_audit),
 * so the delete waits for a pending row's commit and the pseudonymizing statement after it sees that row.
 * Before it, the user's lock (`vault.lock_user`, the one POST /init takes before its insert): an /init holding it
 * commits its vault first and the delete sees it; one that comes later waits and reads the tombstone (`tombstone`,
 * the keyed pseudonym), written in this transaction, and refuses the user (410 VAULT_ERASED).
 */
export async function eraseVault(tx: ErasureTx, userId: string, tombstone: string): Promise<Partial<ErasureCounts>> {
  await enterUserScope(tx, userId);
  await tx.execute(sql`select vault.lock_user(${userId})`);
  const deleted = await tx
    .delete(encryptionVaults)
    .where(eq(encryptionVaults.userId, userId))
    .returning({ userId: encryptionVaults.userId });
  await tx.insert(erasedUsers).values({ pseudonym: tombstone }).onConflictDoNothing();
  const pseudonym = `erased:${randomUUID()}`;
  // ErasureTx leaves the driver open (any service's schema), so execute() is untyped: this is node-postgres.
  const result = (await tx.execute(sql`select vault.pseudonymize_audit(${userId}, ${pseudonym}) as n`)) as QueryResult<{ n: string }>;
  await leaveUserScope(tx);
  return {
    deleted: { encryption_vaults: deleted.length },
    pseudonymized: { encryption_vault_audit: Number(result.rows[0]?.n ?? 0) },
  };
}

export function erasureParticipant(deps: ErasureDeps): ErasureParticipantOptions {
  const { pseudonymSecret, ...rest } = deps;
  return {
    service: 'vault',
    queue: ERASURE_QUEUE,
    outbox,
    processedMessages,
    ...rest,
    erase: (tx, userId) => eraseVault(tx, userId, pseudonymFor(pseudonymSecret, userId)),
  };
}

export async function subscribeErasure(deps: ErasureDeps): Promise<void> {
  await subscribeErasureParticipant(erasureParticipant(deps));
}
