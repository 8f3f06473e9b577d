import { and, eq, isNotNull, ne, or, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { PgTransaction } from 'drizzle-orm/pg-core';
import type { Logger } from 'pino';
import { createEvent, SERVICE_NAME_PATTERN } from '../contracts/events';
import type { EventBus } from './types';
import { enqueueEvent, type OutboxRelay, type OutboxTable, type ProcessedMessagesTable } from './outbox';

/** What one participant did with the user's rows, by table (or kind of record). */
export interface ErasureCounts {
  deleted: Record<string, number>;
  pseudonymized: Record<string, number>;
  /** Kept for a legal duty (bookkeeping), with the user id replaced by a keyed pseudonym. */
  retained: Record<string, number>;
}

/** The transaction an erase function runs in (every service's drizzle schema differs). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export type ErasureTx = PgTransaction<any, any, any>;

export interface ErasureParticipantOptions {
  /** The name this service answers with (`credits`, `sync`…): `^[a-z][a-z0-9-]{1,40}$`. */
  service: string;
  bus: EventBus;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
  db: NodePgDatabase<any>;
  outbox: OutboxTable;
  processedMessages: ProcessedMessagesTable;
  relay?: OutboxRelay;
  logger: Logger;
  /** Queue name (default: the service name). */
  queue?: string;
  /** Removes or pseudonymizes everything the service holds on `userId`, inside `tx`. */
  erase: (tx: ErasureTx, userId: string, requestId: string) => Promise<Partial<ErasureCounts>>;
}

/**
 * Joins the erasure saga: consumes `user.erasure.requested.v1` and, once per `requestId`, runs the
 * service's erase function and enqueues `user.erasure.completed.v1` in one transaction. A repeated
 * request (the coordinator asking again, a redelivery) changes nothing and gets the first answer again.
 * The user's relayed events still in this service's outbox go too: they carry the id or the email.
 */
export async function subscribeErasureParticipant(opts: ErasureParticipantOptions): Promise<void> {
  if (!SERVICE_NAME_PATTERN.test(opts.service)) throw new Error(`invalid erasure participant name: ${opts.service}`);
  await opts.bus.subscribe({
    queue: opts.queue ?? opts.service,
    bindings: ['user.erasure.requested.v1'],
    handler: async (event) => {
      if (event.type !== 'user.erasure.requested.v1') return;
      await handleErasureRequest(opts, event.id, event.data.requestId, event.data.userId);
    },
  });
}

/**
 * One delivery of an erasure request. A redelivered message (same event id) changes nothing; a new
 * message for a request already done (the coordinator asking again) gets the stored answer again;
 * only the first message of a request erases.
 */
export async function handleErasureRequest(
  opts: ErasureParticipantOptions,
  eventId: string,
  requestId: string,
  userId: string,
): Promise<{ counts: ErasureCounts; repeated: boolean } | undefined> {
  const { db, outbox, processedMessages: processed, service } = opts;
  const consumer = `${service}.erasure-request`;
  const outcome = await db.transaction(async (tx) => {
    // The delivery's marker and the request's, in one statement: a known delivery is a redelivery (it committed
    // both), a new delivery of a known request the coordinator asking again, a new request the one to erase.
    const markers = await tx
      .insert(processed)
      .values([
        { consumer: opts.queue ?? service, messageId: eventId },
        { consumer, messageId: requestId },
      ])
      .onConflictDoNothing()
      .returning({ consumer: processed.consumer });
    const fresh = markers.filter((m) => m.consumer === consumer);
    if (fresh.length === 0 && markers.length === 0) return undefined;
    let counts: ErasureCounts;
    if (fresh.length === 0) {
      const [row] = await tx
        .select({ result: processed.result })
        .from(processed)
        .where(and(eq(processed.consumer, consumer), eq(processed.messageId, requestId)));
      counts = normalize(row?.result as Partial<ErasureCounts> | undefined);
    } else {
      // Before erase(): revocations its own writes enqueue (auth's session.revoked.v1) must still go out.
      await tx
        .delete(outbox)
        .where(
          and(
            sql`${outbox.envelope}->'data'->>'userId' = ${userId}`,
            or(isNotNull(outbox.publishedAt), ne(outbox.type, 'session.revoked.v1')),
          ),
        );
      counts = normalize(await opts.erase(tx, userId, requestId));
      await tx
        .update(processed)
        .set({ result: counts })
        .where(and(eq(processed.consumer, consumer), eq(processed.messageId, requestId)));
    }
    await enqueueEvent(tx, outbox, createEvent('user.erasure.completed.v1', { requestId, userId, service, ...counts }));
    return { counts, repeated: fresh.length === 0 };
  });
  if (outcome) opts.relay?.kick();
  opts.logger.info({ requestId, service, repeated: outcome?.repeated, redelivered: !outcome }, 'erasure request handled');
  return outcome;
}

function normalize(c: Partial<ErasureCounts> | undefined): ErasureCounts {
  return { deleted: c?.deleted ?? {}, pseudonymized: c?.pseudonymized ?? {}, retained: c?.retained ?? {} };
}
