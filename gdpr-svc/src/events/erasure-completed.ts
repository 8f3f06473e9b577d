import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Logger } from 'pino';
import type { EventBus, EventEnvelope } from '@mana/shared';
import * as tables from '../db/schema';
import { completeErasures, recordAnswers } from '../domain/erasure';
import { activeSigningKey } from '../domain/keys';

export const CONSUMER = 'gdpr.erasure-completed';

/** Answers taken from the queue at once, and so the most one transaction records. */
const PREFETCH = 100;

export interface ErasureCompletedDeps {
  db: NodePgDatabase<typeof tables>;
  bus: EventBus;
  sealKey: Buffer;
  /** `iss` of the receipts. */
  issuer: string;
  logger: Logger;
}

type Answer = EventEnvelope<'user.erasure.completed.v1'>;

interface Waiting {
  event: Answer;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * `user.erasure.completed.v1` → the participant's first answer is recorded; the last one closes the request
 * and signs the receipt, in the same transaction.
 *
 * Answers come in bursts (every participant answers every request of a burst of erasures). The ones that
 * arrive while a transaction runs are recorded together by the next one — one transaction, a handful of
 * statements and one commit per batch instead of seven statements per answer. Each message is acknowledged
 * only after the transaction holding it committed; a batch that fails is retried one answer at a time, so
 * one bad answer fails (and is retried by the bus) alone.
 */
export async function subscribeErasureCompleted(deps: ErasureCompletedDeps): Promise<void> {
  const waiting: Waiting[] = [];
  let running = false;
  const drain = async () => {
    running = true;
    while (waiting.length > 0) await runBatch(deps, waiting.splice(0, PREFETCH));
    running = false;
  };
  await deps.bus.subscribe({
    queue: 'gdpr',
    bindings: ['user.erasure.completed.v1'],
    prefetch: PREFETCH,
    handler: (event) => {
      if (event.type !== 'user.erasure.completed.v1') return Promise.resolve();
      const done = new Promise<void>((resolve, reject) => waiting.push({ event, resolve, reject }));
      if (!running) void drain();
      return done;
    },
  });
}

async function runBatch(deps: ErasureCompletedDeps, batch: Waiting[]): Promise<void> {
  try {
    await recordBatch(
      deps,
      batch.map((w) => w.event),
    );
    for (const w of batch) w.resolve();
  } catch (err) {
    if (batch.length === 1) {
      batch[0]?.reject(err);
      return;
    }
    for (const w of batch) {
      await recordBatch(deps, [w.event]).then(w.resolve, w.reject);
    }
  }
}

/** One transaction: the messages' markers, every fresh answer, and the requests they complete (with receipts). */
async function recordBatch(deps: ErasureCompletedDeps, events: Answer[]): Promise<void> {
  const { db, logger } = deps;
  const outcome = await db.transaction(async (tx) => {
    const fresh = await tx
      .insert(tables.processedMessages)
      .values(events.map((e) => ({ consumer: CONSUMER, messageId: e.id })))
      .onConflictDoNothing()
      .returning({ id: tables.processedMessages.messageId });
    const freshIds = new Set(fresh.map((r) => r.id));
    const answers = events.filter((e) => freshIds.delete(e.id)).map((e) => e.data);
    const completed = await recordAnswers(tx, answers);
    if (completed.length > 0) {
      const key = await activeSigningKey(db, deps.sealKey);
      await completeErasures(tx, completed, key, deps.issuer);
    }
    return { answers, completed };
  });
  logger.info(
    {
      answers: outcome.answers.map((a) => `${a.requestId}:${a.service}`),
      redelivered: events.length - outcome.answers.length,
      completed: outcome.completed,
    },
    'erasure answers recorded',
  );
}
