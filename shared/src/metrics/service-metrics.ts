import { isNull, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventEnvelope } from '../contracts/events';
import type { OutboxTable } from '../bus/outbox';
import type { EventBus, QueueDepth } from '../bus/types';
import type { HttpObserver } from './http';

/** Milliseconds a scrape waits for the broker's queue counts before it reports without them. */
const QUEUE_CHECK_TIMEOUT_MS = 1_000;

export const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * One service's Prometheus metrics, in a registry of its own (tests run several services in one process).
 * Hot paths only touch counters (bound children cached per label set); everything that needs the
 * database or the broker — pool, outbox, queue depths — is read when Prometheus scrapes.
 * Every series carries `service` (e.g. `vault-svc`).
 */
export class ServiceMetrics implements HttpObserver {
  readonly registry = new Registry();
  readonly service: string;
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly latency: Histogram<'route' | 'method'>;
  private readonly requestChildren = new Map<string, Counter.Internal>();
  private readonly latencyChildren = new Map<string, Histogram.Internal<'route' | 'method'>>();
  private readonly detach: Array<() => void> = [];

  constructor(opts: { service: string; defaultMetrics?: boolean }) {
    this.service = opts.service;
    this.registry.setDefaultLabels({ service: opts.service });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.requests = this.counter('mana_http_requests_total', 'Requests answered, by route template, method and status', [
      'route',
      'method',
      'status',
    ]);
    this.latency = new Histogram({
      name: 'mana_http_request_duration_seconds',
      help: 'Time from request to the end of the response, by route template and method',
      labelNames: ['route', 'method'] as const,
      buckets: HTTP_BUCKETS,
      registers: [this.registry],
    });
  }

  /** A counter in this service's registry (business counters of a service). */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  /**
   * A gauge whose value is read at scrape time. A failing read (database or broker away) leaves the gauge
   * without samples in that scrape instead of failing the whole scrape: `absent()` shows it.
   */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[], collect: (g: Gauge<L>) => Promise<void> | void): Gauge<L> {
    return new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        try {
          await collect(this);
        } catch {
          this.reset();
        }
      },
    });
  }

  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`;
    let counter = this.requestChildren.get(key);
    if (!counter) {
      counter = this.requests.labels(route, method, String(status));
      this.requestChildren.set(key, counter);
    }
    counter.inc();
    const lkey = `${method} ${route}`;
    let histogram = this.latencyChildren.get(lkey);
    if (!histogram) {
      histogram = this.latency.labels(route, method);
      this.latencyChildren.set(lkey, histogram);
    }
    histogram.observe(seconds);
  }

  /** Connections of the pg pool: total, idle, in use, and requests waiting for one. */
  observePool(pool: pg.Pool): void {
    this.gauge('mana_db_pool_connections', 'Connections of the database pool by state (total, idle, in_use, waiting)', ['state'], (g) => {
      g.set({ state: 'total' }, pool.totalCount);
      g.set({ state: 'idle' }, pool.idleCount);
      g.set({ state: 'in_use' }, pool.totalCount - pool.idleCount);
      g.set({ state: 'waiting' }, pool.waitingCount);
    });
  }

  /** Bus counters from the bus's own events, and the queues' depths read from the broker at scrape time. */
  observeBus(bus: EventBus): void {
    const published = this.counter('mana_bus_published_total', 'Events the broker confirmed, by event type', ['type']);
    const consumed = this.counter('mana_bus_consumed_total', 'Events handled successfully, by queue and event type', ['queue', 'type']);
    const retried = this.counter('mana_bus_retried_total', 'Failed deliveries parked for a retry, by queue and event type', [
      'queue',
      'type',
    ]);
    const dead = this.counter('mana_bus_dead_lettered_total', 'Messages sent to a dead-letter queue, by queue, event type and reason', [
      'queue',
      'type',
      'reason',
    ]);
    const on = <A extends unknown[]>(name: string, fn: (...args: A) => void) => {
      const listener = fn as (...args: unknown[]) => void;
      bus.on(name, listener);
      this.detach.push(() => bus.off(name, listener));
    };
    on('published', (e: EventEnvelope) => published.inc({ type: e.type }));
    on('handled', (e: EventEnvelope, queue: string) => consumed.inc({ queue, type: e.type }));
    on('retried', (e: EventEnvelope, queue: string) => retried.inc({ queue, type: e.type }));
    on('dead-lettered', (d: { queue: string; reason: string; type?: string }) =>
      dead.inc({ queue: d.queue, type: d.type ?? 'unknown', reason: d.reason }),
    );

    // A scrape collects every gauge in the same tick: both gauges share one question to the broker.
    let depths: Promise<QueueDepth[]> | undefined;
    const read = () => {
      depths ??= (bus.queueDepths?.(QUEUE_CHECK_TIMEOUT_MS) ?? Promise.resolve([])).finally(() => {
        depths = undefined;
      });
      return depths;
    };
    this.gauge('mana_bus_queue_messages', 'Messages waiting in a consumer queue of this service (consumer lag)', ['queue'], async (g) => {
      g.reset();
      for (const d of await read()) g.set({ queue: d.queue }, d.messages);
    });
    this.gauge(
      'mana_bus_dead_letter_messages',
      'Messages in the dead-letter queue of a consumer queue of this service',
      ['queue'],
      async (g) => {
        g.reset();
        for (const d of await read()) g.set({ queue: d.queue }, d.deadLetters);
      },
    );
  }

  /** Events waiting in the transactional outbox and the age of the oldest (one indexed query per scrape). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any service's schema
  observeOutbox(db: NodePgDatabase<any>, outbox: OutboxTable): void {
    // Shared by both gauges of one scrape (collected in the same tick).
    let last: Promise<{ n: number; age: number }> | undefined;
    const read = () => {
      last ??= db
        .select({
          n: sql<number>`count(*)::int`,
          age: sql<number>`coalesce(extract(epoch from now() - min(${outbox.createdAt})), 0)::float8`,
        })
        .from(outbox)
        .where(isNull(outbox.publishedAt))
        .then(([row]) => ({ n: row?.n ?? 0, age: row?.age ?? 0 }))
        .finally(() => {
          last = undefined;
        });
      return last;
    };
    this.gauge('mana_outbox_pending_events', 'Events committed to the outbox and not yet confirmed by the broker', [], async (g) => {
      g.set((await read()).n);
    });
    this.gauge(
      'mana_outbox_oldest_pending_age_seconds',
      'Age of the oldest event not yet relayed (0 when the outbox is empty)',
      [],
      async (g) => {
        g.set((await read()).age);
      },
    );
  }

  /** The Prometheus text exposition of this registry. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Removes the bus listeners (the runtime closes). */
  close(): void {
    for (const off of this.detach.splice(0)) off();
  }
}
