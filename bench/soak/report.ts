// The soak's verdict and its tables: per minute (rate, latency, errors, memory of every process) and per process.
import { percentile, type Recorder } from './load';
import { CLIENT, type Sample } from './sampler';
import { MIX, type OpName } from './traffic';

/** Memory is flat when the last minute's mean RSS is at most this factor of the first minute's after the warm-up. */
export const MEMORY_FACTOR = 1.1;
/** p99 is stable when the last minute's p99 is at most this factor of the first minute's after the warm-up. */
export const P99_FACTOR = 1.5;

export interface MinuteRow {
  minute: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  load: number;
  pgConnections: number;
  rss: Record<string, number>;
  heap: Record<string, number>;
  /** CPU used in the window, in % of one core. */
  cpu: Record<string, number>;
}

export interface ProcVerdict {
  name: string;
  first: number;
  last: number;
  ratio: number;
  heapFirst: number;
  heapLast: number;
  heapRatio: number;
  cpuSeconds: number;
  /** RSS flat (the target). */
  ok: boolean;
  /** V8 heap in use flat by the same rule (tells a leak in JavaScript from the allocator's or V8's own growth). */
  heapOk: boolean;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

export function minuteRows(rec: Recorder, samples: Sample[], windowMs: number, names: string[]): MinuteRow[] {
  return rec.windows.map((w, i) => {
    // Samples carry their nominal time (0, 10 s, 20 s, …): those of a window are after its start up to its end.
    const inside = samples.filter((s) => s.at > i * windowMs && s.at <= (i + 1) * windowMs);
    const before = [...samples].reverse().find((s) => s.at <= i * windowMs);
    const lastInside = inside[inside.length - 1];
    const per = (f: (s: Sample, n: string) => number) => Object.fromEntries(names.map((n) => [n, mean(inside.map((s) => f(s, n)))]));
    const cpu = Object.fromEntries(
      names.map((n) => {
        const a = before?.procs[n];
        const b = lastInside?.procs[n];
        return [n, a && b && lastInside && before ? ((b.cpuMs - a.cpuMs) / (lastInside.at - before.at)) * 100 : NaN];
      }),
    );
    return {
      minute: i + 1,
      rps: w.requests / (windowMs / 1000),
      p50: percentile(w.latencies, 50),
      p99: percentile(w.latencies, 99),
      max: Math.max(...w.latencies),
      errors: w.errors,
      load: mean(inside.map((s) => s.load1)),
      pgConnections: Math.max(...inside.map((s) => s.pgConnections)),
      rss: per((s, n) => s.procs[n]?.rss ?? NaN),
      heap: per((s, n) => s.procs[n]?.heap ?? NaN),
      cpu,
    };
  });
}

/** The first minute after the warm-up minute and the last minute (the same one in a run of two minutes). */
export function comparedMinutes(rows: MinuteRow[]): { first: MinuteRow; last: MinuteRow } {
  const first = rows[Math.min(1, rows.length - 1)];
  return { first, last: rows[rows.length - 1] };
}

/**
 * The minutes memory is compared over: the first ones after the warm-up against the last ones, up to three each
 * (minutes 2–4 against 8–10 in a 10-minute soak). One minute each was too short: a minute's mean can sit in a trough
 * or on a peak of the collector's sawtooth (a credits-svc instance measured 130 MB in minute 2 and 136–152 MB in
 * every minute after it).
 */
export function memoryWindows(rows: MinuteRow[]): { first: MinuteRow[]; last: MinuteRow[]; label: string } {
  const after = rows.slice(Math.min(1, rows.length - 1));
  const k = Math.max(1, Math.min(3, Math.floor(after.length / 2)));
  const first = after.slice(0, k);
  const last = after.slice(-k);
  const span = (w: MinuteRow[]) => (w.length === 1 ? `minute ${w[0]?.minute}` : `minutes ${w[0]?.minute}–${w[w.length - 1]?.minute}`);
  return { first, last, label: `mean of ${span(last)} ≤ ${MEMORY_FACTOR.toFixed(2)} × mean of ${span(first)}` };
}

export function procVerdicts(rows: MinuteRow[], samples: Sample[], names: string[]): ProcVerdict[] {
  const windows = memoryWindows(rows);
  const end = samples[samples.length - 1];
  const start = samples[0];
  const over = (w: MinuteRow[], f: (r: MinuteRow) => number | undefined) => mean(w.map((r) => f(r) ?? NaN));
  return names.map((name) => {
    const first = over(windows.first, (r) => r.rss[name]);
    const last = over(windows.last, (r) => r.rss[name]);
    const heapFirst = over(windows.first, (r) => r.heap[name]);
    const heapLast = over(windows.last, (r) => r.heap[name]);
    const ratio = last / first;
    const heapRatio = heapLast / heapFirst;
    return {
      name,
      first,
      last,
      ratio,
      heapFirst,
      heapLast,
      heapRatio,
      cpuSeconds: ((end?.procs[name]?.cpuMs ?? NaN) - (start?.procs[name]?.cpuMs ?? NaN)) / 1000,
      ok: name === CLIENT || ratio <= MEMORY_FACTOR,
      heapOk: name === CLIENT || heapRatio <= MEMORY_FACTOR,
    };
  });
}

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '–');
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

/** The wide table for the terminal: one row per minute, the RSS (MB) of every process in columns. */
export function terminalTable(rows: MinuteRow[], names: string[]): string {
  const head = ['min', 'req/s', 'p50', 'p99', 'max', 'err', 'load', 'pg', ...names.map((n) => (n === CLIENT ? 'client' : n))];
  const lines = rows.map((r) => [
    String(r.minute),
    f0(r.rps),
    f1(r.p50),
    f1(r.p99),
    f0(r.max),
    String(r.errors),
    f1(r.load),
    f0(r.pgConnections),
    ...names.map((n) => f0(r.rss[n] ?? NaN)),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  return [fmt(head), ...lines.map(fmt)].join('\n');
}

export function minuteTable(rows: MinuteRow[], names: string[]): string {
  const services = names.filter((n) => n !== CLIENT);
  return [
    '| minute | req/s | p50 ms | p99 ms | max ms | errors | load (1 min) | PostgreSQL connections | RSS of the system, MB | CPU of the system, % of a core | CPU of the load generator, % |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const rss = services.reduce((s, n) => s + (r.rss[n] ?? 0), 0);
      const cpu = services.reduce((s, n) => s + (r.cpu[n] ?? 0), 0);
      const label = r.minute === 1 && rows.length > 1 ? '1 (warm-up)' : String(r.minute);
      return `| ${label} | ${f0(r.rps)} | ${f1(r.p50)} | ${f1(r.p99)} | ${f0(r.max)} | ${r.errors} | ${f1(r.load)} | ${f0(r.pgConnections)} | ${f0(rss)} | ${f0(cpu)} | ${f0(r.cpu[CLIENT] ?? NaN)} |`;
    }),
  ].join('\n');
}

export function processTable(rows: MinuteRow[], verdicts: ProcVerdict[]): string {
  const minutes = rows.map((r) => `m${r.minute}`);
  return [
    `| process | ${minutes.join(' | ')} | compared: first → last | ratio | heap in use, MB, first → last | heap ratio | CPU s | flat (≤ ${MEMORY_FACTOR.toFixed(2)}) |`,
    `|---|${minutes.map(() => '---:').join('|')}|---:|---:|---:|---:|---:|---|`,
    ...verdicts.map((v) => {
      const per = rows.map((r) => f0(r.rss[v.name] ?? NaN)).join(' | ');
      const result = v.name === CLIENT ? '(not judged)' : v.ok ? 'yes' : '**no**';
      return `| ${v.name} | ${per} | ${f0(v.first)} → ${f0(v.last)} | ${f2(v.ratio)} | ${f1(v.heapFirst)} → ${f1(v.heapLast)} | ${f2(v.heapRatio)} | ${f1(v.cpuSeconds)} | ${result} |`;
    }),
  ].join('\n');
}

/** V8 heap in use (MB, mean of the minute's samples) per process and minute: where a leak in JavaScript would show. */
export function heapTable(rows: MinuteRow[], names: string[]): string {
  const minutes = rows.map((r) => `m${r.minute}`);
  return [
    `| process | ${minutes.join(' | ')} |`,
    `|---|${minutes.map(() => '---:').join('|')}|`,
    ...names.map((n) => `| ${n} | ${rows.map((r) => f1(r.heap[n] ?? NaN)).join(' | ')} |`),
  ].join('\n');
}

export function opTable(rec: Recorder): string {
  const total = rec.total.requests;
  return [
    '| operation | share of the mix | requests | p50 ms | p99 ms | errors |',
    '|---|---:|---:|---:|---:|---:|',
    ...(Object.keys(MIX) as OpName[]).map((op) => {
      const s = rec.byOp.get(op) ?? { requests: 0, errors: 0, latencies: [] };
      return `| ${op} | ${((s.requests / Math.max(1, total)) * 100).toFixed(1)}% | ${s.requests} | ${f1(percentile(s.latencies, 50))} | ${f1(percentile(s.latencies, 99))} | ${s.errors} |`;
    }),
  ].join('\n');
}

export function errorList(rec: Recorder): string {
  if (!rec.errors.size) return 'none';
  return [...rec.errors]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `\`${k}\` × ${n}`)
    .join(', ');
}
