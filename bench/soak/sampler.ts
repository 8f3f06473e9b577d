// Every 10 s: resident memory and CPU time of every process (from /proc), its V8 heap in use (from its own
// /metrics, as Prometheus would scrape it), and the connections the run holds on PostgreSQL.
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { METRICS_TOKEN, type Proc } from './system';

export interface ProcSample {
  /** Resident set size, MB (VmRSS). */
  rss: number;
  /** V8 heap in use, MB (`nodejs_heap_size_used_bytes`); NaN when the scrape failed. */
  heap: number;
  /** CPU time used since start, ms (utime + stime). */
  cpuMs: number;
}

export interface Sample {
  /** ms since the soak started */
  at: number;
  procs: Record<string, ProcSample>;
  /** Connections to the run's database (pg_stat_activity). */
  pgConnections: number;
  load1: number;
}

const MB = 1024 * 1024;

function procStatus(pid: number | undefined): { rss: number; cpuMs: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { rss: rssKb / 1024, cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 }; // USER_HZ = 100
  } catch {
    return { rss: NaN, cpuMs: NaN };
  }
}

async function heapUsed(url: string): Promise<number> {
  try {
    const res = await fetch(`${url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
      signal: AbortSignal.timeout(5_000),
    });
    const text = await res.text();
    const m = /^(?:gateway_)?nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([\d.e+]+)/m.exec(text);
    return m ? Number(m[1]) / MB : NaN;
  } catch {
    return NaN;
  }
}

/** The name the load generator (this process) has in the samples. */
export const CLIENT = 'load generator';

export async function sample(procs: Proc[], sql: pg.Pool, dbName: string, at: number, load1: number): Promise<Sample> {
  const heaps = await Promise.all(procs.map((p) => heapUsed(p.url)));
  const out: Record<string, ProcSample> = {};
  procs.forEach((p, i) => (out[p.name] = { ...procStatus(p.child.pid), heap: heaps[i] ?? NaN }));
  const own = process.cpuUsage();
  out[CLIENT] = { rss: process.memoryUsage().rss / MB, heap: process.memoryUsage().heapUsed / MB, cpuMs: (own.user + own.system) / 1000 };
  const { rows } = await sql
    .query<{ n: number }>('select count(*)::int as n from pg_stat_activity where datname = $1', [dbName])
    .catch(() => ({ rows: [{ n: NaN }] }));
  return { at, procs: out, pgConnections: rows[0]?.n ?? NaN, load1 };
}
