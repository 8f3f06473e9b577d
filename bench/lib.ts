import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import autocannon from 'autocannon';
import { SERVICE_NODE_FLAGS } from '@mana/shared';

export interface LoadResult {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  mean: number;
  errors: number;
  non2xx: number;
}

/** Runs autocannon against one target and reduces the result to what the reports need. */
export async function load(name: string, opts: autocannon.Options): Promise<LoadResult> {
  const result = await autocannon({ connections: 50, duration: 10, ...opts });
  return {
    name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    mean: result.latency.mean,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

export function loadTable(rows: LoadResult[], baseline: string): string {
  const base = rows.find((r) => r.name === baseline)?.rps ?? NaN;
  const lines = [
    '| target | req/s | ratio to ' + baseline + ' | p50 ms | mean ms | p99 ms | errors | non-2xx |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.rps.toFixed(0)} | ${(r.rps / base).toFixed(2)} | ${r.p50} | ${r.mean.toFixed(2)} | ${r.p99} | ${r.errors} | ${r.non2xx} |`,
    ),
  ];
  return lines.join('\n');
}

export function machine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model ?? 'cpu'}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

const FILE = new URL('../docs/BENCHMARKS.md', import.meta.url);

/** Replaces (or appends) one benchmark's section of docs/BENCHMARKS.md, leaving the others alone. */
export function writeSection(name: string, markdown: string): void {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  let doc = existsSync(FILE)
    ? readFileSync(FILE, 'utf8')
    : '# Benchmarks\n\nEach section is rewritten by its script in `bench/` (`npm run bench -- <name>`); ratios compare targets measured in the same run on the same machine.\n';
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const re = new RegExp(`${start}[\\s\\S]*?${end}`);
  doc = re.test(doc) ? doc.replace(re, block) : `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(FILE, doc);
}

/**
 * Benchmark servers run in their own processes (so the load generator does not share their event loop).
 * A worker script prints `READY <url>` once listening; `start` resolves with that url.
 */
export class Workers {
  private readonly children: ChildProcess[] = [];
  private readonly byRole = new Map<string, ChildProcess>();

  constructor(private readonly script: string) {}

  start(role: string, env: Record<string, string>): Promise<string> {
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, '--import', 'tsx', this.script, role], {
      env: { ...process.env, LOG_LEVEL: 'error', NODE_ENV: 'development', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.children.push(child);
    this.byRole.set(role, child);
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        const m = /READY (\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
    });
  }

  /** CPU time (user + system, ms) the worker of `role` has used so far, from /proc (Linux); NaN elsewhere. */
  cpuMs(role: string): number {
    const pid = this.byRole.get(role)?.pid;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in USER_HZ (100 on Linux)
    } catch {
      return NaN;
    }
  }

  stopAll(): void {
    for (const c of this.children) c.kill('SIGTERM');
  }
}

/**
 * The three sums of every wallet (cached balance, ledger, lots) and the ledger's balance per transaction, as
 * columns `owners`, `disagree`, `unbalanced` and `spends`: a bench that ran credits traffic selects these (and
 * may add columns after them) to show that nothing was lost or counted twice.
 */
export const WALLET_SUMS_SQL = `
    with w as (
      select w.owner, w.available,
        (select coalesce(sum(amount), 0) from credits.ledger_postings p where p.owner = w.owner and p.account = 'available') as ledger,
        (select coalesce(sum(remaining), 0) from credits.grants g where g.owner = w.owner) as lots
      from credits.wallets w)
    select (select count(*)::int from w) as owners,
      (select count(*)::int from w where available <> ledger or available <> lots) as disagree,
      (select count(*)::int from (select transaction_id from credits.ledger_postings group by 1 having sum(amount) <> 0) x) as unbalanced,
      (select count(*)::int from credits.ledger_transactions where kind = 'spend') as spends`;
