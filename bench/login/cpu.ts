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

/** Starts a measurement; the returned function gives CPU ms per operation for `ops` operations since then. */
export async function cpuMeter(src: CpuSources): Promise<(ops: number) => Promise<CpuPerOp>> {
  const authLoop = procCpuMs(src.authPid, src.authPid);
  const authTotal = procCpuMs(src.authPid);
  const gateway = procCpuMs(src.gatewayPid);
  const pgBefore = await postgresCpuMs(src.pool, src.database);
  return async (ops) => {
    const pgAfter = await postgresCpuMs(src.pool, src.database);
    let postgres = 0;
    for (const [pid, ms] of pgAfter) postgres += ms - (pgBefore.get(pid) ?? 0);
    return {
      authLoop: (procCpuMs(src.authPid, src.authPid) - authLoop) / ops,
      authTotal: (procCpuMs(src.authPid) - authTotal) / ops,
      gateway: (procCpuMs(src.gatewayPid) - gateway) / ops,
      postgres: postgres / ops,
    };
  };
}
