import { and, eq, inArray, isNotNull, ne, or, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { PgTransaction } from 'drizzle-orm/pg-core';
import type { Logger } from 'pino';
import { createEvent, SERVICE_NAME_PATTERN, type EventEnvelope } from '../contracts/events';
import { failpoint } from './failpoint';
import type { EventBus } from './types';
import { enqueueEvents, type OutboxRelay, type OutboxTable, type ProcessedMessagesTable } from './outbox';

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

/** Requests taken from the queue at once, and so the most one transaction erases. */
const PREFETCH = 20;

interface Delivery {
  eventId: string;
  requestId: string;
  userId: string;
}

export type ErasureOutcome = { counts: ErasureCounts; repeated: boolean } | undefined;

/**
 * Joins the erasure saga: consumes `user.erasure.requested.v1` and, once per `requestId`, runs the
 * service's erase function and enqueues `user.erasure.completed.v1` in one transaction. A repeated
 * request (the coordinator asking again, a redelivery) changes nothing and gets the first answer again.
 * The user's relayed events still in this service's outbox go too: they carry the id or the email.
 *
 * Requests that arrive while a transaction erases (a burst of erasures) are handled together by the next one: one
 * transaction, the markers, outbox cleanup and answers written once for all of them, each user's erase in turn.
 * Every message is acknowledged after that commit; a batch that fails is retried one request at a time, so one
 * failing erase fails (and is retried by the bus) alone.
 */
export async function subscribeErasureParticipant(opts: ErasureParticipantOptions): Promise<void> {
  if (!SERVICE_NAME_PATTERN.test(opts.service)) throw new Error(`invalid erasure participant name: ${opts.service}`);
  const waiting: Array<{ delivery: Delivery; resolve: () => void; reject: (err: unknown) => void }> = [];
  let running = false;
  const drain = async () => {
    running = true;
    while (waiting.length > 0) {
      const batch = waiting.splice(0, PREFETCH);
      try {
        await handleErasureRequests(
          opts,
          batch.map((w) => w.delivery),
        );
        failpoint('erasure.before-ack'); // chaos tests: committed, not yet acknowledged
        for (const w of batch) w.resolve();
      } catch (err) {
        if (batch.length === 1) batch[0]?.reject(err);
        else for (const w of batch) await handleErasureRequests(opts, [w.delivery]).then(() => w.resolve(), w.reject);
      }
    }
    running = false;
  };
  await opts.bus.subscribe({
    queue: opts.queue ?? opts.service,
    bindings: ['user.erasure.requested.v1'],
    prefetch: PREFETCH,
    handler: (event) => {
      if (event.type !== 'user.erasure.requested.v1') return Promise.resolve();
      const delivery = { eventId: event.id, requestId: event.data.requestId, userId: event.data.userId };
      const done = new Promise<void>((resolve, reject) => waiting.push({ delivery, resolve, reject }));
      if (!running) void drain();
      return done;
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
): Promise<ErasureOutcome> {
  const [outcome] = await handleErasureRequests(opts, [{ eventId, requestId, userId }]);
  return outcome;
}

/** `handleErasureRequest` for several deliveries in one transaction; one outcome per delivery, in order. */
export async function handleErasureRequests(opts: ErasureParticipantOptions, deliveries: readonly Delivery[]): Promise<ErasureOutcome[]> {
  const { db, outbox, processedMessages: processed, service } = opts;
  const queue = opts.queue ?? service;
  const consumer = `${service}.erasure-request`;
  const outcomes = await db.transaction(async (tx) => {
    // Every delivery's marker and every request's, in one statement: a known delivery is a redelivery (it committed
    // both), a new delivery of a known request the coordinator asking again, a new request the one to erase.
    // Sorted, so two instances inserting overlapping batches take the rows' locks in one order (no deadlock).
    const rows = deliveries
      .flatMap((d) => [
        { consumer: queue, messageId: d.eventId },
        { consumer, messageId: d.requestId },
      ])
      .sort((a, b) => (a.consumer + a.messageId < b.consumer + b.messageId ? -1 : 1));
    const markers = await tx
      .insert(processed)
      .values(rows)
      .onConflictDoNothing()
      .returning({ consumer: processed.consumer, messageId: processed.messageId });
    const newDeliveries = new Set(markers.filter((m) => m.consumer !== consumer).map((m) => m.messageId));
    const newRequests = new Set(markers.filter((m) => m.consumer === consumer).map((m) => m.messageId));
    const toErase = deliveries.filter((d) => newRequests.delete(d.requestId)); // the first delivery of each new request
    if (toErase.length > 0) {
      // Before erase(): revocations its own writes enqueue (auth's session.revoked.v1) must still go out.
      await tx.delete(outbox).where(
        and(
          inArray(
            sql`${outbox.envelope}->'data'->>'userId'`,
            toErase.map((d) => d.userId),
          ),
          or(isNotNull(outbox.publishedAt), ne(outbox.type, 'session.revoked.v1')),
        ),
      );
    }
    const counted = new Map<string, ErasureCounts>();
    // In user order (UTF-16 code units: COLLATE "C"'s order for the ASCII ids Better Auth makes). An erase locks its
    // user's rows and advisory locks, so two batches, or a batch and a service's own multi-user statement that locks
    // in the same order, never wait on each other in a cycle.
    const byUser = [...toErase].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
    for (const d of byUser) counted.set(d.requestId, normalize(await opts.erase(tx, d.userId, d.requestId)));
    if (counted.size > 0) {
      const results = JSON.stringify([...counted].map(([id, counts]) => ({ id, counts })));
      await tx.execute(sql`update ${processed} p set result = r.counts
        from jsonb_to_recordset(${results}::jsonb) as r(id uuid, counts jsonb)
        where p.consumer = ${consumer} and p.message_id = r.id`);
    }
    const erased = new Set(toErase);
    const answers: ErasureOutcome[] = [];
    const events: EventEnvelope[] = [];
    for (const d of deliveries) {
      if (!erased.has(d) && !newDeliveries.has(d.eventId)) {
        answers.push(undefined); // a redelivery: it answered when it was first delivered
        continue;
      }
      newDeliveries.delete(d.eventId);
      let counts = counted.get(d.requestId);
      if (!counts) {
        const [row] = await tx
          .select({ result: processed.result })
          .from(processed)
          .where(and(eq(processed.consumer, consumer), eq(processed.messageId, d.requestId)));
        counts = normalize(row?.result as Partial<ErasureCounts> | undefined);
      }
      answers.push({ counts, repeated: !erased.has(d) });
      events.push(createEvent('user.erasure.completed.v1', { requestId: d.requestId, userId: d.userId, service, ...counts }));
    }
    await enqueueEvents(tx, outbox, events);
    return answers;
  });
  if (outcomes.some((o) => o !== undefined)) opts.relay?.kick();
  deliveries.forEach((d, i) =>
    opts.logger.info(
      { requestId: d.requestId, service, repeated: outcomes[i]?.repeated, redelivered: !outcomes[i] },
      'erasure request handled',
    ),
  );
  return outcomes;
}

function normalize(c: Partial<ErasureCounts> | undefined): ErasureCounts {
  return { deleted: c?.deleted ?? {}, pseudonymized: c?.pseudonymized ?? {}, retained: c?.retained ?? {} };
}
