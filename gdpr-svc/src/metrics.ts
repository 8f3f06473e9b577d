import { sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { MetricSignal, type ServiceMetrics } from '@mana/shared';
import type * as tables from './db/schema';

/** A new erasure request (not one joining a running request), by origin (`self`, `admin`). */
export const erasureStarted = new MetricSignal<[origin: string]>();
/** A request passed its deadline unanswered by some participant: it is `partial` now (and still retried). */
export const erasurePartial = new MetricSignal<[]>();
/** A request completed: seconds from request to receipt, and whether it had gone `partial` first. */
export const erasureCompleted = new MetricSignal<[seconds: number, wasPartial: boolean]>();

const DURATION_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 72 * 3600, 7 * 86400, 30 * 86400];

/**
 * gdpr-svc's business metrics: erasures started, gone partial and completed, their duration, and — read at
 * scrape time from the open requests (partial index) — how many are open by status and how many are past
 * their deadline. Returns the unsubscribe function.
 */
export function gdprMetrics(metrics: ServiceMetrics, db: NodePgDatabase<typeof tables>): () => void {
  const started = metrics.counter('gdpr_erasures_started_total', 'Erasure requests started, by origin (self, admin)', ['origin']);
  const partial = metrics.counter('gdpr_erasures_partial_total', 'Erasure requests that passed their deadline with a participant missing');
  const completed = metrics.counter(
    'gdpr_erasures_completed_total',
    'Erasure requests completed (receipt signed), by whether they were late',
    ['late'],
  );
  const duration = metrics.histogram(
    'gdpr_erasure_duration_seconds',
    'Time from an erasure request to its signed receipt',
    DURATION_BUCKETS,
  );
  let open: Promise<Array<{ status: string; n: number; overdue: number }>> | undefined;
  // Both gauges of one scrape share one query (they are collected in the same tick).
  const readOpen = () => {
    open ??= db
      .execute<{ status: string; n: number; overdue: number }>(
        sql`select status, count(*)::int as n, (count(*) filter (where deadline_at <= now()))::int as overdue
              from gdpr.erasure_requests where status <> 'completed' group by status`,
      )
      .then((r) => r.rows)
      .finally(() => {
        open = undefined;
      });
    return open;
  };
  metrics.gauge('gdpr_erasures_open', 'Erasure requests not completed yet, by status (in_progress, partial)', ['status'], async (g) => {
    const rows = await readOpen();
    g.reset();
    g.set({ status: 'in_progress' }, 0);
    g.set({ status: 'partial' }, 0);
    for (const r of rows) g.set({ status: r.status }, r.n);
  });
  metrics.gauge('gdpr_erasures_overdue', 'Erasure requests past their deadline and not completed', [], async (g) => {
    g.set((await readOpen()).reduce((s, r) => s + r.overdue, 0));
  });
  const off = [
    erasureStarted.subscribe((origin) => started.inc({ origin })),
    erasurePartial.subscribe(() => partial.inc()),
    erasureCompleted.subscribe((seconds, wasPartial) => {
      completed.inc({ late: String(wasPartial) });
      duration.observe(seconds);
    }),
  ];
  return () => {
    for (const f of off) f();
  };
}
