// npm run bench -- soak
// The whole system — every service twice and the gateway, each in its own process — under a realistic mix of
// traffic through the gateway: first its capacity (closed loops), then SOAK_MINUTES at half of it (open loop, a
// constant arrival rate). Every 10 s the memory and CPU of every process; per minute the rate, p50, p99, errors.
// Judged: memory flat, no error, p99 stable; afterwards the ledger, the audit and the projections must agree.
//
// SOAK_MINUTES (10; the first minute is the warm-up), SOAK_INSTANCES (2), SOAK_USERS (100), SOAK_CAPACITY_SECONDS
// (20), SOAK_CONNECTIONS (16 closed loops), SOAK_RATE (skips the capacity run), SOAK_WINDOW_SECONDS (60; shorter
// only to try the script out).
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { testPool } from '../../shared/src/testing';
import { SERVICE_NODE_FLAGS } from '../../shared/src/node-flags';
import { machine, writeSection } from '../lib';
import { checkConsistency } from './consistency';
import { Recorder, closedLoop, openLoop, percentile } from './load';
import {
  P99_FACTOR,
  comparedMinutes,
  memoryWindows,
  errorList,
  heapTable,
  minuteRows,
  minuteTable,
  opTable,
  procVerdicts,
  processTable,
  terminalTable,
} from './report';
import { CLIENT, sample, type Sample } from './sampler';
import { createUsers } from './setup';
import { logLevels, startSystem } from './system';
import { MIX, Traffic } from './traffic';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const WINDOW_MS = Number(process.env.SOAK_WINDOW_SECONDS ?? 60) * 1000;
const INSTANCES = Number(process.env.SOAK_INSTANCES ?? 2);
const USERS = Number(process.env.SOAK_USERS ?? 100);
const CAPACITY_SECONDS = Number(process.env.SOAK_CAPACITY_SECONDS ?? 20);
const CONNECTIONS = Number(process.env.SOAK_CONNECTIONS ?? 16);
const FIXED_RATE = process.env.SOAK_RATE ? Number(process.env.SOAK_RATE) : undefined;
const SAMPLE_MS = 10_000;
const MAX_IN_FLIGHT = 2_000;

const began = performance.now();
const say = (msg: string) => process.stdout.write(`[${((performance.now() - began) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
const load1 = () => loadavg()[0] ?? NaN;

const loadBefore = loadavg().map((x) => x.toFixed(1));
say(`load average ${loadBefore.join(' / ')}; starting ${INSTANCES} instance(s) of every service and the gateway`);
const system = await startSystem({ instances: INSTANCES, onStep: say });
const sql = testPool(system.db.url, 2);
const traffic = new Traffic(system.gatewayUrl);
try {
  const started = performance.now();
  say(`system ready (${system.procs.length} processes); creating ${USERS} users and an admin`);
  const { users, admin } = await createUsers(traffic, sql, USERS);
  traffic.useActors(users, admin);
  const setupSeconds = (performance.now() - started) / 1000;

  let capacity = FIXED_RATE ?? NaN;
  const capRec = new Recorder(CAPACITY_SECONDS * 1000);
  if (FIXED_RATE === undefined) {
    say(`capacity: ${CONNECTIONS} closed loops, 5 s warm-up, then ${CAPACITY_SECONDS} s`);
    await closedLoop(traffic, CONNECTIONS, 5_000, new Recorder(60_000));
    capacity = await closedLoop(traffic, CONNECTIONS, CAPACITY_SECONDS * 1000, capRec);
    say(`capacity ${capacity.toFixed(0)} req/s (errors ${capRec.total.errors})`);
  }
  const rate = FIXED_RATE ?? capacity / 2;
  const capLatency = (p: number) =>
    percentile(
      capRec.windows.flatMap((w) => w.latencies),
      p,
    ).toFixed(1);
  const loadAtSoak = load1();

  // Samples at nominal times 0, 10 s, 20 s, … of the soak (each taken when due, stamped with its nominal time).
  const samples: Sample[] = [];
  const soakRec = new Recorder(WINDOW_MS);
  const soakStart = performance.now();
  let sampling = true;
  const sampler = (async () => {
    for (let k = 0; sampling; k++) {
      const wait = soakStart + k * SAMPLE_MS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (!sampling) break;
      samples.push(await sample(system.procs, sql, system.db.name, k * SAMPLE_MS, load1()));
      if (k % 6 === 0 && k > 0) say(`soak: ${k / 6} of ${MINUTES} min, ${soakRec.total.requests} requests, ${soakRec.total.errors} errors`);
    }
  })();
  say(`soak: ${rate.toFixed(0)} req/s for ${MINUTES} min`);
  await openLoop(traffic, rate, MINUTES * 60_000, soakRec, { maxInFlight: MAX_IN_FLIGHT });
  // The last sample (the end of the last minute) is due now.
  while (samples.length <= Math.round((MINUTES * 60_000) / SAMPLE_MS) && performance.now() - soakStart < MINUTES * 60_000 + 30_000)
    await new Promise((r) => setTimeout(r, 100));
  sampling = false;
  await sampler;
  const loadAfter = loadavg().map((x) => x.toFixed(1));

  say('checking consistency');
  const check = await checkConsistency(sql, system.busPrefix);
  const logs = system.procs.map((p) => ({ name: p.name, ...logLevels(p) }));

  const names = [...system.procs.map((p) => p.name), CLIENT];
  const rows = minuteRows(soakRec, samples, WINDOW_MS, names);
  const verdicts = procVerdicts(rows, samples, names);
  const { first, last } = comparedMinutes(rows);
  process.stdout.write(`\n${terminalTable(rows, names)}\n\n`);

  const soakErrors = soakRec.total.errors;
  const all5xx = soakRec.serverErrors + capRec.serverErrors;
  const memoryOk = verdicts.every((v) => v.ok);
  const heapOk = verdicts.every((v) => v.heapOk);
  const worstHeap = verdicts.filter((v) => v.name !== CLIENT).sort((a, b) => b.heapRatio - a.heapRatio)[0];
  const worst = verdicts.filter((v) => v.name !== CLIENT).sort((a, b) => b.ratio - a.ratio)[0];
  const p99Ratio = last.p99 / first.p99;
  const achieved = soakRec.total.requests / (MINUTES * 60);
  const ledgerOk =
    check.walletsDisagreeing === 0 && check.unbalancedTransactions === 0 && check.spendsInLedger === traffic.confirmed.spends;
  const auditOk = check.keyFetchesAudited === traffic.confirmed.keyFetches;
  const projectionsOk = check.eventsSettled && (check.deadLetters ?? 0) === 0;
  const logErrors = logs.reduce((s, l) => s + l.error, 0);
  const exited = system.procs.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null).map((p) => p.name);
  const soakLoad = rows.slice(1).map((r) => r.load);
  const yes = (ok: boolean) => (ok ? '**met**' : '**missed**');
  const short = rows.length < 3 ? ' (a run this short compares a minute with itself: judge only a full run)' : '';
  const mixLine = Object.entries(MIX)
    .map(([op, n]) => `${op} ${(n / 10).toFixed(1)}%`)
    .join(', ');
  const total = (performance.now() - began) / 1000;

  writeSection(
    'soak',
    `## Soak

\`npm run bench -- soak\` — ${machine()}. The whole system as \`INSTANCES=${INSTANCES} npm start\` runs it, but every
part in its own process (\`node ${SERVICE_NODE_FLAGS.join(' ')} --import tsx <svc>/src/server.ts\`, as the image runs it): ${INSTANCES} instance(s) of auth-svc, vault-svc,
credits-svc, admin-svc and gdpr-svc, one gateway round-robining over them (rate limit counted in Redis), a fresh
database on the local PostgreSQL (each service as its own role), own exchange and queues on the local RabbitMQ, an
SMTP sink for the mails. The load generator (node:http, keep-alive) runs in the bench process: all ${system.procs.length + 1}
processes share the machine's cores. ${USERS} users signed in (each with a vault and credits) and one admin.

The mix, in a seeded shuffle of every 1,000 requests: ${mixLine}. Spends carry a fresh idempotency key; refreshes
rotate each user's refresh token in turn (one at a time per user) and the new access token is used from then on;
logins and registrations (scrypt, ~85 ms of CPU each) and GDPR summaries (four services asked, ~45 ms of CPU in all)
are the small part they are in real traffic; at 6% the summaries alone took about a third of the CPU.

1. **Capacity**: ${FIXED_RATE === undefined ? `${CONNECTIONS} closed loops (each sends its next request when the last was answered), 5 s warm-up, then ${CAPACITY_SECONDS} s: **${capacity.toFixed(0)} req/s** (p50 ${capLatency(50)} ms, p99 ${capLatency(99)} ms, errors ${capRec.total.errors})` : `not measured, \`SOAK_RATE=${FIXED_RATE}\``}.
2. **Soak**: ${MINUTES} min at **${rate.toFixed(0)} req/s** (half the capacity), open loop: requests leave on a fixed
   schedule whatever the answers do, and latency counts from when a request was due (a stall shows as latency, not as
   fewer requests). Achieved ${achieved.toFixed(0)} req/s. Minute 1 is the warm-up.
3. Every 10 s: RSS (\`/proc/<pid>/status\`) and CPU time (\`/proc/<pid>/stat\`) of every process, its V8 heap in use
   from its own \`/metrics\` (\`nodejs_heap_size_used_bytes\`, scraped with \`METRICS_TOKEN\` as Prometheus would), the
   connections on the run's database.

Load average (1 / 5 / 15 min) before the run: ${loadBefore.join(' / ')}; at the start of the soak: ${loadAtSoak.toFixed(1)}; after: ${loadAfter.join(' / ')}.
Creating the ${USERS + 1} users (once every process was ready): ${setupSeconds.toFixed(0)} s; the run from its start to the end of the checks (the clean-up adds ~10 s): ${(total / 60).toFixed(1)} min.

### Per minute

${minuteTable(rows, names)}

### Memory (RSS, MB, mean of the minute's samples) per process

Rule: a process's memory is flat when its RSS has ${memoryWindows(rows).label} (minute 1 is the warm-up; windows of
up to three minutes, so one minute in a trough or on a peak of the garbage collector's sawtooth does not decide)${short}.

${processTable(rows, verdicts)}

### V8 heap in use (MB, mean of the minute's samples) per process

${heapTable(rows, names)}

### Per operation (whole soak)

${opTable(soakRec)}

Errors in the soak: ${errorList(soakRec)}. In the capacity run: ${errorList(capRec)}.

### After the run

- Wallets: ${check.wallets}; wallets whose ledger sum, lot remainders and cached balance disagree: ${check.walletsDisagreeing};
  unbalanced ledger transactions: ${check.unbalancedTransactions}.
- Spends in the ledger: ${check.spendsInLedger}; spends answered 201 (setup, capacity run and soak): ${traffic.confirmed.spends}.
- Key fetches in vault-svc's audit: ${check.keyFetchesAudited}; key fetches answered 200: ${traffic.confirmed.keyFetches}.
- Users in auth-svc: ${check.users} (${traffic.confirmed.registrations} registered during the load); directory rows in
  admin-svc: ${check.directoryRows}; signup bonuses in credits-svc: ${check.signupBonuses}${check.eventsSettled ? '' : ' (did not settle within 60 s)'};
  messages in the run's dead-letter queues: ${check.deadLetters ?? 'not checked (rabbitmqctl not allowed)'}; mails sent: ${system.mailsSent()}.
- Log lines at level error in the processes' logs: ${logErrors}${logErrors ? ` — ${logSummary(logs)}` : ''}; at warn: ${logs.reduce((s, l) => s + l.warn, 0)}.
- Processes that ended during the run: ${exited.length ? exited.join(', ') : 'none'}.

### Targets

| target | measured | result |
|---|---|---|
| memory of every process flat (RSS, ${memoryWindows(rows).label}) | worst: ${worst?.name} ${worst ? worst.ratio.toFixed(2) : '–'} | ${yes(memoryOk)} |
| (for the reading) V8 heap in use of every process flat, same rule | worst: ${worstHeap?.name} ${worstHeap ? worstHeap.heapRatio.toFixed(2) : '–'} | ${yes(heapOk)} |
| no error in the soak (any answer but the expected status, connection errors, timeouts) | ${soakErrors} of ${soakRec.total.requests} | ${yes(soakErrors === 0)} |
| p99 stable (last minute ≤ ${P99_FACTOR} × minute 2) | ${first.p99.toFixed(1)} → ${last.p99.toFixed(1)} ms (${p99Ratio.toFixed(2)}) | ${yes(p99Ratio <= P99_FACTOR)} |
| no 5xx (capacity run and soak) | ${all5xx} | ${yes(all5xx === 0)} |
| ledger sums agree, every 201 spend in the ledger once | ${ledgerOk ? 'agree' : 'disagree'} | ${yes(ledgerOk)} |
| every 200 key fetch audited once | ${check.keyFetchesAudited} / ${traffic.confirmed.keyFetches} | ${yes(auditOk)} |
| every user in the directory and with one signup bonus, no dead letters | ${check.directoryRows} / ${check.signupBonuses} / ${check.users} | ${yes(projectionsOk)} |
| no process ended | ${exited.length ? exited.join(', ') : 'none'} | ${yes(exited.length === 0)} |

### Reading it

${reading({ rows, verdicts, worst, worstHeap, p99Ratio, soakLoad, achieved, rate, soakErrors })}
`,
  );
  process.stdout.write(
    `capacity ${capacity.toFixed(0)} req/s, soak ${rate.toFixed(0)} req/s for ${MINUTES} min: errors ${soakErrors}, 5xx ${all5xx}, ` +
      `p99 ${first.p99.toFixed(1)} → ${last.p99.toFixed(1)} ms, worst memory ratio ${worst?.name} ${worst?.ratio.toFixed(2)}, ` +
      `ledger ${ledgerOk ? 'agrees' : 'DISAGREES'}, audit ${auditOk ? 'agrees' : 'DISAGREES'}, projections ${projectionsOk ? 'settled' : 'NOT SETTLED'}; ` +
      `${(total / 60).toFixed(1)} min in all\n`,
  );
} catch (err) {
  // What the processes logged at level error tells more than the status the client saw.
  for (const p of system.procs) {
    const l = logLevels(p);
    for (const [what, n] of l.errors) process.stderr.write(`${p.name}: ${n} × ${what}\n`);
  }
  throw err;
} finally {
  traffic.close();
  await sql.end().catch(() => undefined);
  await system.stop();
  say('stopped and cleaned up');
}

/** A few sentences on what the numbers say; the judgement of a run on a busy machine is the load column's. */
function reading(r: {
  rows: ReturnType<typeof minuteRows>;
  verdicts: ReturnType<typeof procVerdicts>;
  worst?: ReturnType<typeof procVerdicts>[number];
  worstHeap?: ReturnType<typeof procVerdicts>[number];
  p99Ratio: number;
  soakLoad: number[];
  achieved: number;
  rate: number;
  soakErrors: number;
}): string {
  const out: string[] = [];
  const maxLoad = Math.max(...r.soakLoad);
  const quiet = maxLoad < 3;
  out.push(
    quiet
      ? `- The machine was quiet during the soak (1-minute load ≤ ${maxLoad.toFixed(1)}): the latencies are the system's own.`
      : `- The 1-minute load reached ${maxLoad.toFixed(1)} on ${cpus().length} cores (the soak's own processes count in it, and any other ` +
          `work): latency and its p99 follow the load column; memory and the counts are not moved by it.`,
  );
  out.push(
    `- The open loop kept its schedule: ${r.achieved.toFixed(1)} of ${r.rate.toFixed(1)} req/s` +
      (r.soakErrors ? `; ${r.soakErrors} requests failed (listed above).` : ', every answer the expected one.'),
  );
  if (r.worst && r.worstHeap)
    out.push(
      `- Memory: the largest RSS change between the compared minutes is ${r.worst.name}'s (${((r.worst.ratio - 1) * 100).toFixed(0)}%), ` +
        `of the V8 heap in use ${r.worstHeap.name}'s (${((r.worstHeap.heapRatio - 1) * 100).toFixed(0)}%). A leak shows as a heap that rises ` +
        `minute after minute in the heap table, not as one step; RSS also holds what V8 and the allocator keep after a collection.`,
    );
  out.push(
    `- p99 from minute 2 to the last: ${((r.p99Ratio - 1) * 100).toFixed(0)}%. The p99 of the mix is set by its slowest operations (logins and ` +
      `registrations: scrypt on libuv's four threads; GDPR summaries: four services asked), see the table per operation.`,
  );
  return out.join('\n');
}

/** The log lines at level error by process and what they say, most frequent first. */
function logSummary(logs: Array<{ name: string; errors: Map<string, number> }>): string {
  return logs
    .flatMap((l) => [...l.errors].map(([what, n]) => ({ text: `${l.name}: \`${what.replace(/`/g, "'")}\``, n })))
    .sort((a, b) => b.n - a.n)
    .slice(0, 6)
    .map((e) => `${e.text} × ${e.n}`)
    .join('; ');
}
