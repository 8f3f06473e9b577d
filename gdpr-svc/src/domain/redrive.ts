import { and, asc, eq, inArray, isNull, lte, ne, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Logger } from 'pino';
import { createEvent, enqueueEvent, type OutboxRelay } from '@mana/shared';
import * as tables from '../db/schema';
import { erasurePartial } from '../metrics';
import { backoffMs } from './erasure';

type Db = NodePgDatabase<typeof tables>;

export interface RedriveResult {
  requestId: string;
  attempts: number;
  status: tables.ErasureStatus;
  missing: string[];
}

/**
 * One pass over open requests that are due: past the deadline they become `partial`; every one is asked
 * again (`user.erasure.requested.v1`, same requestId: participants that already answered repeat their
 * answer, the others erase now). Rows are claimed with SKIP LOCKED, so several instances never ask twice.
 */
export async function redriveDue(
  db: Db,
  retryMs: number,
  opts: { only?: string[]; force?: boolean; limit?: number } = {},
): Promise<RedriveResult[]> {
  return db.transaction(async (tx) => {
    const now = new Date();
    const due = await tx
      .select()
      .from(tables.erasureRequests)
      .where(
        and(
          ne(tables.erasureRequests.status, 'completed'),
          opts.force ? undefined : lte(tables.erasureRequests.nextAttemptAt, now),
          opts.only ? inArray(tables.erasureRequests.id, opts.only) : undefined,
        ),
      )
      .orderBy(asc(tables.erasureRequests.nextAttemptAt))
      .limit(opts.limit ?? 100)
      .for('update', { skipLocked: true });
    const out: RedriveResult[] = [];
    for (const request of due) {
      if (!request.userId) continue;
      const pending = await tx
        .select({ service: tables.erasureParticipants.service })
        .from(tables.erasureParticipants)
        .where(and(eq(tables.erasureParticipants.requestId, request.id), isNull(tables.erasureParticipants.completedAt)));
      const status = request.deadlineAt <= now ? 'partial' : request.status;
      if (status === 'partial' && request.status !== 'partial') erasurePartial.emit();
      const attempts = request.attempts + 1;
      await tx
        .update(tables.erasureRequests)
        .set({ status, attempts, nextAttemptAt: new Date(now.getTime() + backoffMs(retryMs, attempts)) })
        .where(eq(tables.erasureRequests.id, request.id));
      await enqueueEvent(tx, tables.outbox, createEvent('user.erasure.requested.v1', { requestId: request.id, userId: request.userId }));
      out.push({ requestId: request.id, attempts, status, missing: pending.map((p) => p.service) });
    }
    return out;
  });
}

/** Open requests for the operator command (no user ids: the keyed hash is enough to tell them apart). */
export async function listOpen(db: Db) {
  const rows = await db
    .select({
      requestId: tables.erasureRequests.id,
      status: tables.erasureRequests.status,
      origin: tables.erasureRequests.origin,
      requestedAt: tables.erasureRequests.requestedAt,
      deadlineAt: tables.erasureRequests.deadlineAt,
      attempts: tables.erasureRequests.attempts,
      nextAttemptAt: tables.erasureRequests.nextAttemptAt,
      missing: sql<
        string[]
      >`array(select p.service from ${tables.erasureParticipants} p where p.request_id = ${tables.erasureRequests.id} and p.completed_at is null order by p.service)`,
    })
    .from(tables.erasureRequests)
    .where(ne(tables.erasureRequests.status, 'completed'))
    .orderBy(asc(tables.erasureRequests.requestedAt));
  return rows;
}

/** Runs `redriveDue` on a timer in the service (every instance may: SKIP LOCKED keeps them apart). */
export class ErasureRedriver {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly db: Db,
    private readonly retryMs: number,
    private readonly relay: OutboxRelay | undefined,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const every = Math.min(this.retryMs, 5_000);
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.pass().finally(() => (this.running = undefined));
    }, every);
    this.timer.unref();
  }

  private async pass(): Promise<void> {
    try {
      const asked = await redriveDue(this.db, this.retryMs);
      if (asked.length > 0) {
        this.relay?.kick();
        this.logger.info({ requests: asked }, 'asked erasure participants again');
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'erasure re-drive pass failed');
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
