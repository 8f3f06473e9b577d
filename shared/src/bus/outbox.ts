import { and, asc, eq, inArray, isNull, lt, sql } from 'drizzle-orm';
import { index, integer, jsonb, primaryKey, text, timestamp, uuid, type PgSchema } from 'drizzle-orm/pg-core';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { PgTransaction } from 'drizzle-orm/pg-core';
import type { Logger } from 'pino';
import type { EventEnvelope } from '../contracts/events';
import { parseEnvelope } from '../contracts/events';
import { failpoint, ignoredFailpoint } from './failpoint';
import type { EventBus } from './types';

/** The outbox and processed-message tables, declared inside the owning service's schema. */
export function messagingTables(schema: PgSchema) {
  const outbox = schema.table(
    'outbox',
    {
      id: uuid('id').primaryKey(),
      type: text('type').notNull(),
      envelope: jsonb('envelope').$type<EventEnvelope>().notNull(),
      createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
      publishedAt: timestamp('published_at', { withTimezone: true }),
      attempts: integer('attempts').notNull().default(0),
      lastError: text('last_error'),
    },
    (t) => [
      index('outbox_pending_idx')
        .on(t.createdAt)
        .where(sql`${t.publishedAt} is null`),
    ],
  );
  const processedMessages = schema.table(
    'processed_messages',
    {
      consumer: text('consumer').notNull(),
      messageId: uuid('message_id').notNull(),
      processedAt: timestamp('processed_at', { withTimezone: true }).notNull().defaultNow(),
      /** What the consumer answered (an erasure's counts), so a repeated request gets the same answer. */
      result: jsonb('result').$type<unknown>(),
    },
    (t) => [primaryKey({ columns: [t.consumer, t.messageId] })],
  );
  return { outbox, processedMessages };
}

export type MessagingTables = ReturnType<typeof messagingTables>;
export type OutboxTable = MessagingTables['outbox'];
export type ProcessedMessagesTable = MessagingTables['processedMessages'];

// Any service's database or transaction: the schema type parameters stay open so that a callback still
// sees its own service's typed `tx.query` (drizzle types them by the schema each service passes in).
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- one schema type per service, see above
type AnyDb = NodePgDatabase<any> | PgTransaction<any, any, any>;

/** Writes an event in the caller's transaction: it is published only if that transaction commits. */
export async function enqueueEvent(tx: AnyDb, outbox: OutboxTable, event: EventEnvelope): Promise<void> {
  const valid = parseEnvelope(event);
  await tx.insert(outbox).values({ id: valid.id, type: valid.type, envelope: valid });
}

/** `enqueueEvent` for several events: one INSERT. */
export async function enqueueEvents(tx: AnyDb, outbox: OutboxTable, events: readonly EventEnvelope[]): Promise<void> {
  if (events.length === 0) return;
  await tx.insert(outbox).values(
    events.map((event) => {
      const valid = parseEnvelope(event);
      return { id: valid.id, type: valid.type, envelope: valid };
    }),
  );
}

/**
 * Runs `fn` at most once per (consumer, message id): the marker row and the handler's writes commit
 * together, so a redelivered message changes nothing.
 */
export async function consumeOnce(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any service's schema, see AnyDb
  db: NodePgDatabase<any>,
  processed: ProcessedMessagesTable,
  consumer: string,
  messageId: string,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any service's schema, see AnyDb
  fn: (tx: PgTransaction<any, any, any>) => Promise<void>,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const fresh = await tx.insert(processed).values({ consumer, messageId }).onConflictDoNothing().returning({ id: processed.messageId });
    if (fresh.length === 0) return false;
    await fn(tx);
    return true;
  });
}

export interface OutboxRelayOptions {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any service's schema, see AnyDb
  db: NodePgDatabase<any>;
  outbox: OutboxTable;
  bus: EventBus;
  logger: Logger;
  intervalMs?: number;
  batchSize?: number;
  /** Published rows are kept this long for inspection, then pruned; 0 deletes a row once the broker confirmed it. */
  retentionMs?: number;
}

/**
 * Relays committed outbox rows to the bus. Several instances may run: rows are claimed with
 * FOR UPDATE SKIP LOCKED. A row is marked published only after the broker confirmed it.
 */
export class OutboxRelay {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = true;
  private lastPrune = 0;
  private readonly onConnected = () => this.kick();

  constructor(private readonly opts: OutboxRelayOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const ignored = ignoredFailpoint();
    if (ignored) this.opts.logger.warn({ failpoint: ignored }, 'MANA_FAILPOINT ignored: failpoints are armed only with NODE_ENV=test');
    this.opts.bus.on('connected', this.onConnected);
    this.schedule();
    this.kick();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.kick();
      this.schedule();
    }, this.opts.intervalMs ?? 1_000);
    this.timer.unref();
  }

  /** Asks for a relay pass now (call after committing a transaction that enqueued events). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .then(() => undefined)
      .catch((err: unknown) => this.opts.logger.warn({ err: (err as Error).message }, 'outbox relay pass failed'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Publishes everything pending; resolves when the outbox is empty or the bus refuses. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.relayBatch();
      total += n;
      if (n < (this.opts.batchSize ?? 100)) break;
    }
    await this.prune();
    return total;
  }

  private async relayBatch(): Promise<number> {
    const { db, outbox, bus } = this.opts;
    if (!bus.isConnected()) return 0;
    return db.transaction(async (tx) => {
      const rows = await tx
        .select()
        .from(outbox)
        .where(isNull(outbox.publishedAt))
        .orderBy(asc(outbox.createdAt))
        .limit(this.opts.batchSize ?? 100)
        .for('update', { skipLocked: true });
      // Published together: the confirm channel pipelines them (in row order) and confirms each; one
      // round trip per batch instead of one per row keeps a burst (50 erasures at once) from queueing.
      const results = await Promise.allSettled(rows.map((row) => bus.publish(row.envelope)));
      const done = rows.filter((_, i) => results[i]?.status === 'fulfilled').map((row) => row.id);
      if (done.length > 0) failpoint('outbox.after-publish'); // chaos tests: confirmed by the broker, not yet marked
      const failed = rows.flatMap((row, i) => {
        const r = results[i];
        return r?.status === 'rejected' ? [{ id: row.id, reason: r.reason as unknown }] : [];
      });
      if (done.length > 0) {
        if (this.opts.retentionMs === 0) await tx.delete(outbox).where(inArray(outbox.id, done));
        else await tx.update(outbox).set({ publishedAt: new Date() }).where(inArray(outbox.id, done));
      }
      for (const { id, reason } of failed) {
        const message = reason instanceof Error ? reason.message : String(reason);
        await tx
          .update(outbox)
          .set({ attempts: sql`${outbox.attempts} + 1`, lastError: message.slice(0, 500) })
          .where(eq(outbox.id, id));
      }
      // A refusal means the broker is away: fewer than a full batch ends this pass (the next connect kicks one).
      return done.length;
    });
  }

  private async prune(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const cutoff = new Date(now - (this.opts.retentionMs ?? 24 * 3600_000));
    const { db, outbox } = this.opts;
    await db.delete(outbox).where(and(lt(outbox.publishedAt, cutoff)));
  }

  /** Counts events not yet confirmed by the broker (metrics, tests). */
  async pending(): Promise<number> {
    const { db, outbox } = this.opts;
    const [row] = await db
      .select({ n: sql<number>`count(*)::int` })
      .from(outbox)
      .where(isNull(outbox.publishedAt));
    return row?.n ?? 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.bus.off('connected', this.onConnected);
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
