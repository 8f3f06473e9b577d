import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { JwtFailureReason } from '@mana/shared';
import type { UpstreamFailure } from './proxy';

/**
 * The gateway's Prometheus metrics, in a registry of its own (several gateways may share a process
 * in tests). Labels stay low-cardinality: route names from the route table, never raw paths.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests = new RouteStatusCounter(
    'gateway_requests_total',
    'Requests answered, by route of the route table and status code',
  );
  private readonly latency = new RouteHistogram(
    'gateway_request_duration_seconds',
    'Time from request to the end of the response, by route',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly upstreamErrors = new Counter({
    name: 'gateway_upstream_errors_total',
    help: 'Failed attempts to reach an upstream, by service, instance and kind (refused, reset, timeout)',
    labelNames: ['upstream', 'instance', 'kind'] as const,
    registers: [this.registry],
  });
  readonly jwtFailures = new Counter({
    name: 'gateway_jwt_failures_total',
    help: 'Bearer tokens refused, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'gateway_rate_limited_total',
    help: 'Requests refused with 429, by bucket',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });

  readonly rateLimitFallback = new Counter({
    name: 'gateway_rate_limit_fallback_total',
    help: 'Requests counted by the per-instance in-memory limiter because the shared rate-limit store was unreachable',
    registers: [this.registry],
  });
  private rateLimitStoreState: () => boolean = () => true;
  readonly rateLimitStoreUp = new Gauge({
    name: 'gateway_rate_limit_store_up',
    help: 'Whether the shared rate-limit store (Redis or PostgreSQL) is reachable (0: counting per instance)',
    registers: [this.registry],
    collect: (): void => {
      this.storeUpGauge().set(this.rateLimitStoreState() ? 1 : 0);
    },
  });

  private storeUpGauge(): Gauge {
    return this.rateLimitStoreUp;
  }

  /** Where `gateway_rate_limit_store_up` reads the store's state at scrape time. */
  watchRateLimitStore(up: () => boolean): void {
    this.rateLimitStoreState = up;
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.registry.registerMetric(this.requests as unknown as Metric);
    this.registry.registerMetric(this.latency as unknown as Metric);
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'gateway_' });
  }

  /** One answered request (every request counts here: a few additions, no allocation once its labels were seen). */
  observe(route: string, status: number, seconds: number): void {
    this.requests.inc(route, status);
    this.latency.observe(route, seconds);
  }

  upstreamError(upstream: string, instance: string, kind: UpstreamFailure): void {
    this.upstreamErrors.labels(upstream, instance, kind).inc();
  }

  jwtFailure(reason: JwtFailureReason): void {
    this.jwtFailures.labels(reason).inc();
  }
}

/** What a prom-client registry reads from a metric (its `get()`), for the two metrics counted by hand below. */
interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>;
}

/**
 * A metric counted in plain numbers and read by the registry at scrape time, in prom-client's own exposition. prom-client's
 * counter and histogram check and hash their labels on every increment, even through a bound child: on the gateway's
 * hot path that was a visible share of a request's cost (docs/BENCHMARKS.md).
 */
abstract class HandCounted<K> {
  readonly aggregator = 'sum';
  protected readonly byRoute = new Map<string, K>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricSnapshot['type'],
  ) {}

  protected abstract values(): MetricSnapshot['values'];

  get(): Promise<MetricSnapshot> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() });
  }

  reset(): void {
    this.byRoute.clear();
  }
}

/** Requests by route and status. */
class RouteStatusCounter extends HandCounted<Map<number, number>> {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }

  inc(route: string, status: number): void {
    let byStatus = this.byRoute.get(route);
    if (!byStatus) this.byRoute.set(route, (byStatus = new Map<number, number>()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  }

  protected values(): MetricSnapshot['values'] {
    const values: MetricSnapshot['values'] = [];
    for (const [route, byStatus] of this.byRoute)
      for (const [status, value] of byStatus) values.push({ labels: { route, status: String(status) }, value });
    return values;
  }
}

/**
 * A latency histogram by route. Per route: the count of each bucket (not cumulative; the last one is above every
 * bound), the sum, the count.
 */
class RouteHistogram extends HandCounted<{ buckets: number[]; sum: number; count: number }> {
  constructor(
    name: string,
    help: string,
    private readonly bounds: readonly number[],
  ) {
    super(name, help, 'histogram');
  }

  observe(route: string, value: number): void {
    let h = this.byRoute.get(route);
    if (!h) this.byRoute.set(route, (h = { buckets: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 }));
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    h.buckets[i]++;
    h.sum += value;
    h.count++;
  }

  protected values(): MetricSnapshot['values'] {
    const values: MetricSnapshot['values'] = [];
    const bucket = `${this.name}_bucket`;
    for (const [route, h] of this.byRoute) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += h.buckets[i];
        values.push({ labels: { le, route }, value: acc, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf', route }, value: h.count, metricName: bucket });
      values.push({ labels: { route }, value: h.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { route }, value: h.count, metricName: `${this.name}_count` });
    }
    return values;
  }
}
