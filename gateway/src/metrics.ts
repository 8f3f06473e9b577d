import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { JwtFailureReason } from '@mana/shared';
import type { UpstreamFailure } from './proxy';

/**
 * The gateway's Prometheus metrics, in a registry of its own (several gateways may share a process
 * in tests). Labels stay low-cardinality: route names from the route table, never raw paths.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'gateway_requests_total',
    help: 'Requests answered, by route of the route table and status code',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'gateway_request_duration_seconds',
    help: 'Time from request to the end of the response, by route',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
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
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'gateway_' });
  }

  // Bound children per label set: labels() hashes its arguments on every call.
  private readonly requestChildren = new Map<string, Counter.Internal>();
  private readonly latencyChildren = new Map<string, Histogram.Internal<'route'>>();

  observe(route: string, status: number, seconds: number): void {
    const key = `${route} ${status}`;
    let counter = this.requestChildren.get(key);
    if (!counter) {
      counter = this.requests.labels(route, statusLabel(status));
      this.requestChildren.set(key, counter);
    }
    counter.inc();
    let histogram = this.latencyChildren.get(route);
    if (!histogram) {
      histogram = this.latency.labels(route);
      this.latencyChildren.set(route, histogram);
    }
    histogram.observe(seconds);
  }

  upstreamError(upstream: string, instance: string, kind: UpstreamFailure): void {
    this.upstreamErrors.labels(upstream, instance, kind).inc();
  }

  jwtFailure(reason: JwtFailureReason): void {
    this.jwtFailures.labels(reason).inc();
  }
}

const STATUS_LABELS = new Map<number, string>();
function statusLabel(status: number): string {
  let label = STATUS_LABELS.get(status);
  if (label === undefined) {
    label = String(status);
    STATUS_LABELS.set(status, label);
  }
  return label;
}
