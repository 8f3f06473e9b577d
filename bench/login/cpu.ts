import { readFileSync } from 'node:fs';
import type pg from 'pg';

/**
 * CPU time (user + system, ms) from /proc (Linux; NaN elsewhere): of a whole process, or of one of its threads.
 * A Node process's main thread (thread id = pid) is its event loop: JavaScript, and no scrypt, which runs on
 * libuv's thread pool.
 */
export function procCpuMs(pid: number | undefined, thread?: number): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in USER_HZ (100 on Linux)
  } catch {
    return NaN;
  }
}

/** CPU time (ms) of the PostgreSQL backends connected to `database` (the bench's own connection left out). */
export async function postgresCpuMs(pool: pg.Pool, database: string): Promise<Map<number, number>> {
  const { rows } = await pool.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [
    database,
  ]);
  return new Map(rows.map((r) => [r.pid, procCpuMs(r.pid)]));
}

export interface CpuSources {
  authPid: number | undefined;
  gatewayPid: number | undefined;
  pool: pg.Pool;
  database: string;
}

export interface CpuPerOp {
  /** auth-svc's event loop (main thread). */
  authLoop: number;
  /** auth-svc, every thread (scrypt on the thread pool included). */
  authTotal: number;
  gateway: number;
  postgres: number;
}

/** CPU so far of every source, and when it was read. */
async function sample(
  src: CpuSources,
): Promise<{ at: number; authLoop: number; authTotal: number; gateway: number; pg: Map<number, number> }> {
  return {
    at: Date.now(),
    authLoop: procCpuMs(src.authPid, src.authPid),
    authTotal: procCpuMs(src.authPid),
    gateway: procCpuMs(src.gatewayPid),
    pg: await postgresCpuMs(src.pool, src.database),
  };
}

/** CPU ms spent by each source between two samples. */
function spent(a: Awaited<ReturnType<typeof sample>>, b: Awaited<ReturnType<typeof sample>>): CpuPerOp {
  let postgres = 0;
  for (const [pid, ms] of b.pg) postgres += ms - (a.pg.get(pid) ?? 0);
  return { authLoop: b.authLoop - a.authLoop, authTotal: b.authTotal - a.authTotal, gateway: b.gateway - a.gateway, postgres };
}

/**
 * What the processes spend per second when nothing is asked of them (outbox relay poll, metrics, timers): at a few
 * logins per second that background would otherwise be counted as work of the logins.
 */
export async function idleCpuPerSecond(src: CpuSources, seconds = 3): Promise<CpuPerOp> {
  const a = await sample(src);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = await sample(src);
  const d = spent(a, b);
  const s = (b.at - a.at) / 1000;
  return { authLoop: d.authLoop / s, authTotal: d.authTotal / s, gateway: d.gateway / s, postgres: d.postgres / s };
}

/**
 * Starts a measurement; the returned function gives the CPU ms per operation for `ops` operations since then, the
 * idle background (`idle`, per second) taken out.
 */
export async function cpuMeter(src: CpuSources, idle: CpuPerOp): Promise<(ops: number) => Promise<CpuPerOp>> {
  const a = await sample(src);
  return async (ops) => {
    const b = await sample(src);
    const d = spent(a, b);
    const s = (b.at - a.at) / 1000;
    const per = (k: keyof CpuPerOp) => Math.max(0, d[k] - idle[k] * s) / ops;
    return { authLoop: per('authLoop'), authTotal: per('authTotal'), gateway: per('gateway'), postgres: per('postgres') };
  };
}
