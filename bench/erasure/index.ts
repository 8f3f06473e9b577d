// npm run bench -- erasure
// Time from DELETE /api/v1/me/data to `completed` (every participant answered, receipt signed) for USERS users
// erased at once, through the gateway, with every service of the ecosystem taking part over RabbitMQ.
import { loadavg } from 'node:os';
import { call } from '../../test/helpers/http';
import { startStack } from '../../test/helpers/stack';
import { login, registerVerified } from '../../test/helpers/users';
import { machine, writeSection } from '../lib';

const USERS = Number(process.env.BENCH_USERS ?? 50);
/** Erased one after another first: the latency of the saga without a queue in front of it. */
const ALONE = 5;
const TARGET_P95_MS = 2000;

const stack = await startStack({ services: ['vault', 'credits', 'admin', 'gdpr'] });
try {
  process.stdout.write(`registering ${USERS + ALONE} users…\n`);
  const people: { token: string }[] = [];
  for (let i = 0; i < USERS + ALONE; i++) {
    const { email, password } = await registerVerified(stack);
    const { accessToken } = await login(stack, email, password);
    // Each has something in the vault too, so vault-svc really deletes.
    await call(`${stack.gatewayUrl}/api/v1/me/encryption-vault/init`, { method: 'POST', token: accessToken });
    people.push({ token: accessToken });
  }
  const waitCompleted = async (ids: string[]) => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const { rows } = await stack.sql.query<{ id: string; completed_at: Date }>(
        `select id, completed_at from gdpr.erasure_requests where id = any($1::uuid[]) and status = 'completed'`,
        [ids],
      );
      if (rows.length === ids.length) return new Map(rows.map((r) => [r.id, r.completed_at.getTime()]));
      if (Date.now() > deadline) throw new Error(`only ${rows.length}/${ids.length} erasures completed within 120 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const erase = async (token: string) => {
    const t0 = Date.now();
    const res = await call<{ requestId: string }>(`${stack.gatewayUrl}/api/v1/me/data`, {
      method: 'DELETE',
      token,
      body: { confirm: 'DELETE' },
    });
    if (res.status !== 202) throw new Error(`DELETE answered ${res.status} ${JSON.stringify(res.body)}`);
    return { requestId: res.body.requestId, t0, accepted: Date.now() - t0 };
  };
  const aloneMs: number[] = [];
  for (const p of people.splice(0, ALONE)) {
    const one = await erase(p.token);
    aloneMs.push((await waitCompleted([one.requestId])).get(one.requestId)! - one.t0);
  }
  aloneMs.sort((a, b) => a - b);
  process.stdout.write(`one at a time: ${aloneMs.join(', ')} ms\n`);
  const loadBefore = loadavg()[0].toFixed(1);
  process.stdout.write(`erasing ${USERS} users at once…\n`);
  // When each event first reached the bus (the stack's observer queue), for the breakdown below.
  const seen = new Map<string, number>();
  let scanned = 0;
  const watcher = setInterval(() => {
    for (; scanned < stack.events.length; scanned++) {
      const e = stack.events[scanned];
      if (e.type === 'user.erasure.requested.v1' && !seen.has(`req:${e.data.requestId}`)) seen.set(`req:${e.data.requestId}`, Date.now());
      if (e.type === 'user.erasure.completed.v1' && !seen.has(`done:${e.data.requestId}:${e.data.service}`))
        seen.set(`done:${e.data.requestId}:${e.data.service}`, Date.now());
    }
  }, 5);
  const cpuBefore = process.cpuUsage();
  const started = await Promise.all(people.map((p) => erase(p.token)));
  // completed_at is written by gdpr-svc in this process, on the same clock as t0.
  const ids = started.map((s) => s.requestId);
  const doneAt = await waitCompleted(ids);
  clearInterval(watcher);
  // CPU the whole stack (one process) spent on the burst: unlike the wall clock, barely moved by other load.
  const cpu = process.cpuUsage(cpuBefore);
  const cpuPerErasure = ((cpu.user + cpu.system) / 1000 / USERS).toFixed(1);
  process.stdout.write(`CPU of the stack's process during the burst: ${cpuPerErasure} ms per erasure\n`);
  const loadAfter = loadavg()[0].toFixed(1);
  const med = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? NaN;
  const onBus = med(started.map((s) => (seen.get(`req:${s.requestId}`) ?? NaN) - s.t0));
  const answersOnBus = ['auth', 'vault', 'credits', 'admin'].map(
    (svc) => [svc, med(started.map((s) => (seen.get(`done:${s.requestId}:${svc}`) ?? NaN) - s.t0))] as const,
  );
  process.stdout.write(
    `  request on the bus p50 ${onBus} ms after DELETE; answers on the bus: ${answersOnBus.map(([k, v]) => `${k} ${v} ms`).join(', ')}\n`,
  );
  // Where the time goes: each participant's answer, counted from the request row's commit.
  const { rows: perService } = await stack.sql.query<{ service: string; p50: number; p95: number }>(
    `select p.service,
            percentile_disc(0.5) within group (order by extract(epoch from p.completed_at - r.requested_at) * 1000)::int as p50,
            percentile_disc(0.95) within group (order by extract(epoch from p.completed_at - r.requested_at) * 1000)::int as p95
       from gdpr.erasure_participants p join gdpr.erasure_requests r on r.id = p.request_id
      where r.id = any($1::uuid[]) group by p.service order by p.service`,
    [ids],
  );
  for (const r of perService) process.stdout.write(`  ${r.service}: answer recorded p50 ${r.p50} ms, p95 ${r.p95} ms after the request\n`);
  const durations = started.map((s) => doneAt.get(s.requestId)! - s.t0).sort((a, b) => a - b);
  const accepted = started.map((s) => s.accepted).sort((a, b) => a - b);
  const pct = (list: number[], p: number) => list[Math.min(list.length - 1, Math.ceil((p / 100) * list.length) - 1)];
  const p50 = pct(durations, 50);
  const p95 = pct(durations, 95);
  const max = durations[durations.length - 1];
  process.stdout.write(`DELETE → completed: p50 ${p50} ms, p95 ${p95} ms, max ${max} ms (202 p50 ${pct(accepted, 50)} ms)\n`);
  writeSection(
    'erasure',
    `## Erasure

\`npm run bench -- erasure\` — ${machine()}. ${USERS} users, each signed in with a vault, erased at once: ${USERS}
concurrent \`DELETE /api/v1/me/data\` through the gateway (step-up check at auth-svc included); the clock stops when
gdpr-svc marks the request \`completed\` — auth, vault, credits and admin each consumed
\`user.erasure.requested.v1\`, erased and answered \`user.erasure.completed.v1\`, and the receipt is signed.
Real PostgreSQL and RabbitMQ; the gateway and all five services run in one Node process (the e2e stack), so
this is a pessimistic setup: every service shares one event loop and the machine's two cores.

| measure | p50 | p95 | max |
|---|---:|---:|---:|
| DELETE → \`completed\` | ${p50} ms | ${p95} ms | ${max} ms |
| one erasure at a time (${ALONE} in a row), DELETE → \`completed\` | ${aloneMs[Math.floor(aloneMs.length / 2)]} ms | — | ${aloneMs[aloneMs.length - 1]} ms |
| DELETE → 202 | ${pct(accepted, 50)} ms | ${pct(accepted, 95)} ms | ${accepted[accepted.length - 1]} ms |

Answers recorded by gdpr-svc, counted from the request's commit:

| participant | p50 | p95 |
|---|---:|---:|
${perService.map((r) => `| ${r.service} | ${r.p50} ms | ${r.p95} ms |`).join('\n')}

Where the time goes (p50, counted from the DELETE, seen by an observer queue on the exchange): the request event
reaches the bus after ${onBus} ms; the answers after ${answersOnBus.map(([k, v]) => `${k} ${v} ms`).join(', ')}.
A gap between the 202 and the request on the bus is time in gdpr-svc's outbox relay; a gap between the request and
an answer is the participant's queue, its erase transaction and its own outbox. Requests that queue up at a
participant are erased together in one transaction (the shared participant helper), and answers that queue up at
gdpr-svc are recorded together, so a burst costs far fewer statements and commits than one erasure at a time would.

The run before this work (2026-12-02, load 1.4 → 2.0) measured p50 2810 ms, p95 3015 ms, 202 p50 811 ms; the same
bench then sent 5275 SQL statements during the burst (counted in one run by wrapping \`pg.Client#query\`; the bench's
own polling included), about 105 per erasure; after the batching and the one-statement erasures 2059 (≈ 41). On this
shared machine the wall-clock figures of two runs of the same code a minute apart differed by up to 60 % (p95 1.7 s
and 2.7 s at load 5); the CPU per erasure below is the steadier figure.

CPU time of the stack's one process during the burst: ${cpuPerErasure} ms per erasure (user + system; the
wall-clock figures above depend on what else runs on the machine, this one much less).

1-minute load average before / after: ${loadBefore} / ${loadAfter}.

### Target

| target | measured | result |
|---|---|---|
| p95 DELETE → completed < ${TARGET_P95_MS} ms for ${USERS} users at once | ${p95} ms | ${p95 < TARGET_P95_MS ? '**met**' : '**missed**'} |
`,
  );
} finally {
  await stack.close();
}
