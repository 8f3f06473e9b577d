// Driving the traffic: closed loops (each waits for its answer before the next request: the capacity) and an open
// loop at a constant arrival rate (requests leave on schedule whatever the answers do: the soak). Latency in the
// open loop is measured from the moment a request was due, so a stall is not hidden by requests not sent meanwhile.
import { performance } from 'node:perf_hooks';
import type { OpName, Outcome, Traffic } from './traffic';

export interface Window {
  requests: number;
  errors: number;
  latencies: number[];
}

/** Counts and latencies per window of `windowMs` (by the time a request was due) and per operation. */
export class Recorder {
  readonly windows: Window[] = [];
  readonly byOp = new Map<OpName, { requests: number; errors: number; latencies: number[] }>();
  readonly errors = new Map<string, number>();
  /** Answers with a status ≥ 500, and requests that got no answer (connection error, timeout). */
  serverErrors = 0;
  noAnswer = 0;

  constructor(private readonly windowMs: number) {}

  record(o: Outcome, dueAtMs: number, latencyMs: number): void {
    const index = Math.max(0, Math.floor(dueAtMs / this.windowMs));
    while (this.windows.length <= index) this.windows.push({ requests: 0, errors: 0, latencies: [] });
    const w = this.windows[index];
    w.requests++;
    w.latencies.push(latencyMs);
    let op = this.byOp.get(o.op);
    if (!op) this.byOp.set(o.op, (op = { requests: 0, errors: 0, latencies: [] }));
    op.requests++;
    op.latencies.push(latencyMs);
    if (o.ok) return;
    w.errors++;
    op.errors++;
    const key = o.error ?? `${o.op} ${o.status}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
    if (o.status >= 500) this.serverErrors++;
    if (o.status === 0) this.noAnswer++;
  }

  get total(): { requests: number; errors: number } {
    return this.windows.reduce((s, w) => ({ requests: s.requests + w.requests, errors: s.errors + w.errors }), { requests: 0, errors: 0 });
  }
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `concurrency` loops, each one request after the other, for `durationMs`; resolves with the answers per second. */
export async function closedLoop(traffic: Traffic, concurrency: number, durationMs: number, rec: Recorder): Promise<number> {
  const start = performance.now();
  const end = start + durationMs;
  let done = 0;
  const loop = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const o = await traffic.run(traffic.next());
      const t1 = performance.now();
      rec.record(o, t0 - start, t1 - t0);
      if (t1 <= end) done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return done / (durationMs / 1000);
}

/**
 * `rate` requests per second for `durationMs`, on schedule. More than `maxInFlight` unanswered requests means the
 * system no longer keeps up: further requests are not sent but counted as errors (`overload`), so the client stays
 * bounded.
 */
export async function openLoop(
  traffic: Traffic,
  rate: number,
  durationMs: number,
  rec: Recorder,
  opts: { maxInFlight: number },
): Promise<void> {
  const start = performance.now();
  let sent = 0;
  let inFlight = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= durationMs) break;
    const due = Math.min(Math.floor((elapsed * rate) / 1000), Math.floor((durationMs * rate) / 1000));
    while (sent < due) {
      const dueAt = (sent * 1000) / rate;
      sent++;
      const op = traffic.next();
      if (inFlight >= opts.maxInFlight) {
        rec.record({ op, status: 0, ok: false, error: 'overload (client backlog full)' }, dueAt, performance.now() - start - dueAt);
        continue;
      }
      inFlight++;
      void traffic.run(op).then((o) => {
        inFlight--;
        rec.record(o, dueAt, performance.now() - start - dueAt);
      });
    }
    await sleep(2);
  }
  const drainUntil = performance.now() + 35_000;
  while (inFlight > 0 && performance.now() < drainUntil) await sleep(10);
}
