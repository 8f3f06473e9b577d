// npm run bench -- gateway
// Authenticated GET through the gateway vs the same route called directly, vs the gateway with
// verification off, vs a bare node:http proxy, vs nginx's proxy_pass, and the gateway's own proxy vs
// http-proxy-middleware — one run, same machine, each server in its own process.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { TEST_REDIS_URL, startTestIssuer, uniqueName, deleteRedisKeys } from '../../shared/src/testing';
import { Workers, load, loadTable, machine, writeSection, type LoadResult } from '../lib';
import { NGINX_MISSING, startNginx, type Nginx } from './nginx';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const HPM_VERSION = (
  JSON.parse(readFileSync(new URL('../../node_modules/http-proxy-middleware/package.json', import.meta.url), 'utf8')) as { version: string }
).version;
const CONNECTIONS = 50;
const PATH = '/api/v1/me/data';
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const workers = new Workers(WORKER);
const startWorker = (role: string, env: Record<string, string>) => workers.start(role, env);

type Row = LoadResult;

/** CPU time per request (µs) of the measured server process, by row name: steadier than req/s on a busy machine. */
const cpuPerRequest = new Map<string, number>();

async function measure(name: string, url: string, token: string, cpuMs?: () => number): Promise<Row> {
  const opts = { url: url + PATH, connections: CONNECTIONS, headers: { authorization: `Bearer ${token}` } };
  await autocannon({ ...opts, duration: 2 }); // warm-up: JIT, keep-alive sockets, caches
  const cpuBefore = cpuMs?.() ?? NaN;
  const row = await load(name, { ...opts, duration: DURATION });
  const cpuUs = (((cpuMs?.() ?? NaN) - cpuBefore) * 1000) / (row.rps * DURATION);
  cpuPerRequest.set(name, cpuUs);
  process.stdout.write(
    `${name} (${CONNECTIONS} conn): ${row.rps.toFixed(0)} req/s, p50 ${row.p50} ms, mean ${row.mean.toFixed(2)} ms, p99 ${row.p99} ms, errors ${row.errors}, non-2xx ${row.non2xx}, CPU ${cpuUs.toFixed(0)} µs/request\n`,
  );
  return row;
}

/** The rows' req/s and CPU per request, each also as a share of `base`. */
function cpuTable(rows: Row[], base: string): string {
  const b = rows.find((r) => r.name === base)!;
  const bCpu = cpuPerRequest.get(base) ?? NaN;
  return [
    `| target | req/s | req/s vs ${base} | CPU µs/request | CPU vs ${base} |`,
    '|---|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const cpu = cpuPerRequest.get(r.name) ?? NaN;
      return `| ${r.name} | ${r.rps.toFixed(0)} | ${((r.rps / b.rps) * 100).toFixed(0)}% | ${cpu.toFixed(0)} | ${((cpu / bCpu) * 100).toFixed(0)}% |`;
    }),
  ].join('\n');
}

interface Target {
  name: string;
  url: string;
  cpuMs: () => number;
}

interface AB {
  label: string;
  /** Per round: A's req/s ÷ B's, and A's CPU per request ÷ B's. */
  rps: number[];
  cpu: number[];
}

const AB_ROUNDS = Number(process.env.BENCH_AB_ROUNDS ?? 6);
const AB_SECONDS = Number(process.env.BENCH_AB_SECONDS ?? 3);
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

/**
 * A against B in short alternating rounds (A B, B A, …), the ratio taken per round: when other work on the machine
 * comes and goes, both sides of a round see about the same load, which one long run per target does not promise.
 */
async function ab(label: string, a: Target, b: Target, token: string): Promise<AB> {
  const once = async (t: Target) => {
    const cpuBefore = t.cpuMs();
    const r = await autocannon({
      url: t.url + PATH,
      connections: CONNECTIONS,
      duration: AB_SECONDS,
      headers: { authorization: `Bearer ${token}` },
    });
    const done = r.requests.total || 1;
    return { rps: r.requests.average, cpu: ((t.cpuMs() - cpuBefore) * 1000) / done };
  };
  const result: AB = { label, rps: [], cpu: [] };
  for (let round = 0; round < AB_ROUNDS; round++) {
    const [first, second] = round % 2 ? [b, a] : [a, b];
    const x = await once(first);
    const y = await once(second);
    const [ra, rb] = round % 2 ? [y, x] : [x, y];
    result.rps.push(ra.rps / rb.rps);
    result.cpu.push(ra.cpu / rb.cpu);
  }
  process.stdout.write(
    `A/B ${label}: req/s ratio median ${(median(result.rps) * 100).toFixed(0)}% [${result.rps.map((r) => (r * 100).toFixed(0)).join(' ')}], CPU ratio median ${(median(result.cpu) * 100).toFixed(0)}%\n`,
  );
  return result;
}

function abTable(rows: AB[]): string {
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  return [
    '| A vs B | req/s A ÷ B, median (min–max) | CPU per request A ÷ B, median |',
    '|---|---:|---:|',
    ...rows.map(
      (r) => `| ${r.label} | ${pct(median(r.rps))} (${pct(Math.min(...r.rps))}–${pct(Math.max(...r.rps))}) | ${pct(median(r.cpu))} |`,
    ),
  ].join('\n');
}

/**
 * One request at a time over one kept-alive connection, each timed with hrtime: what a request
 * pays with no queueing (autocannon's latencies are whole milliseconds, too coarse here).
 */
async function sequential(name: string, url: string, token: string, count: number): Promise<Row> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(url + PATH, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`${name}: status ${res.statusCode}`));
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  for (let i = 0; i < 500; i++) await once(); // warm-up
  const times: number[] = [];
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    await once();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const total = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  const row = {
    name,
    rps: count / total,
    p50: at(0.5),
    p99: at(0.99),
    mean: times.reduce((a, b) => a + b, 0) / times.length,
    errors: 0,
    non2xx: 0,
  };
  process.stdout.write(
    `${name} (sequential): p50 ${row.p50.toFixed(3)} ms, mean ${row.mean.toFixed(3)} ms, p99 ${row.p99.toFixed(3)} ms\n`,
  );
  return row;
}

function latencyTable(rows: Row[], base: string): string {
  const b = rows.find((r) => r.name === base)!;
  return [
    `| target | p50 ms | added p50 vs ${base} | mean ms | p99 ms |`,
    '|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${r.p50.toFixed(3)} | +${(r.p50 - b.p50).toFixed(3)} | ${r.mean.toFixed(3)} | ${r.p99.toFixed(3)} |`),
  ].join('\n');
}

const loadBefore = loadavg()
  .map((l) => l.toFixed(1))
  .join(' / ');
const issuer = await startTestIssuer();
const prefix = uniqueName('gwbench');
let nginx: Nginx | undefined;
try {
  const [upstream, upstream2] = await Promise.all([startWorker('upstream:1', {}), startWorker('upstream:2', {})]);
  const gatewayEnv = (extra: Record<string, string>) => ({
    PORT: '0',
    AUTH_JWKS_URL: issuer.jwksUrl,
    BASE_URL: issuer.issuer,
    JWT_AUDIENCE: issuer.audience,
    GDPR_SVC_URL: upstream,
    AUTH_SVC_URL: upstream,
    REDIS_URL: TEST_REDIS_URL,
    RATE_LIMIT_PREFIX: prefix,
    RATE_LIMIT_POINTS: '100000000',
    AMQP_URL: '',
    DATABASE_URL: '',
    ...extra,
  });
  const both = { UPSTREAM_URLS: `${upstream},${upstream2}` };
  const [gateway, noVerify, noCache, perRequest, bare, bareUndici, own, hpm, hpmEjected] = await Promise.all([
    startWorker('gateway:full', gatewayEnv({})),
    startWorker('gateway:no-verify', gatewayEnv({ GATEWAY_VERIFY_JWT: 'false' })),
    startWorker('gateway:no-cache', gatewayEnv({ JWT_CACHE_SIZE: '0' })),
    // The rate limiter as it was: one Redis round trip per request.
    startWorker('gateway:per-request', gatewayEnv({ RATE_LIMIT_LOCAL_SHARE: '0' })),
    startWorker('bare-proxy', { UPSTREAM_URL: upstream }),
    startWorker('bare-undici', { UPSTREAM_URL: upstream }),
    startWorker('own-proxy', both),
    startWorker('hpm-proxy', both),
    startWorker('hpm-proxy-ejected', both),
  ]);
  nginx = await startNginx(upstream);
  if (!nginx) process.stdout.write(`${NGINX_MISSING}\n`);
  const token = await issuer.sign({}, { expiresIn: '1h' });

  const cpu = (role: string) => () => workers.cpuMs(role);
  const loaded: Row[] = [];
  loaded.push(await measure('direct (no proxy)', upstream, token, cpu('upstream:1')));
  if (nginx) loaded.push(await measure('nginx proxy_pass', nginx.url, token, nginx.cpuMs));
  loaded.push(await measure('bare node:http proxy', bare, token, cpu('bare-proxy')));
  loaded.push(await measure('bare undici proxy', bareUndici, token, cpu('bare-undici')));
  loaded.push(await measure('gateway, verification off', noVerify, token, cpu('gateway:no-verify')));
  loaded.push(await measure('gateway, JWT verified', gateway, token, cpu('gateway:full')));
  loaded.push(await measure('gateway, JWT verified, Redis round trip per request', perRequest, token, cpu('gateway:per-request')));
  loaded.push(await measure('gateway, JWT verified, token cache off', noCache, token, cpu('gateway:no-cache')));

  // The proxy step alone, two upstream instances, round robin with failover: the gateway's own vs the library.
  const proxies: Row[] = [];
  proxies.push(await measure('own proxy (gateway/src/proxy.ts)', own, token, cpu('own-proxy')));
  proxies.push(await measure('http-proxy-middleware', hpm, token, cpu('hpm-proxy')));
  proxies.push(await measure('http-proxy-middleware, plugins ejected', hpmEjected, token, cpu('hpm-proxy-ejected')));

  // The three decisions, each as A/B in alternating rounds (warm already from the runs above).
  const target = (name: string, url: string, role: string): Target => ({ name, url, cpuMs: cpu(role) });
  const full = target('gateway', gateway, 'gateway:full');
  const abRows: AB[] = [];
  if (nginx) {
    const vsNginx: Array<[string, Target]> = [
      ['gateway (full pipeline)', full],
      ['bare node:http proxy', target('bare', bare, 'bare-proxy')],
      ['bare undici proxy', target('bare-undici', bareUndici, 'bare-undici')],
    ];
    for (const [label, t] of vsNginx)
      abRows.push(await ab(`${label} vs nginx proxy_pass`, t, { name: 'nginx', url: nginx.url, cpuMs: nginx.cpuMs }, token));
  }
  abRows.push(
    await ab(
      'gateway, rate limit in batches vs a Redis round trip per request',
      full,
      target('per-request', perRequest, 'gateway:per-request'),
      token,
    ),
  );
  abRows.push(
    await ab(
      'http-proxy-middleware (plugins ejected) vs own proxy',
      target('hpm', hpmEjected, 'hpm-proxy-ejected'),
      target('own', own, 'own-proxy'),
      token,
    ),
  );
  const abOf = (label: string) => abRows.find((r) => r.label.startsWith(label));

  const single: Row[] = [];
  const count = Number(process.env.BENCH_SEQUENTIAL ?? 5000);
  single.push(await sequential('direct (no proxy)', upstream, token, count));
  single.push(await sequential('bare node:http proxy', bare, token, count));
  single.push(await sequential('gateway, verification off', noVerify, token, count));
  single.push(await sequential('gateway, JWT verified', gateway, token, count));

  const by = (rows: Row[], name: string) => rows.find((r) => r.name === name)!;
  const ratio = by(loaded, 'gateway, JWT verified').rps / by(loaded, 'gateway, verification off').rps;
  const addedP50 = by(loaded, 'gateway, JWT verified').p50 - by(loaded, 'direct (no proxy)').p50;
  const addedP50Single = by(single, 'gateway, JWT verified').p50 - by(single, 'direct (no proxy)').p50;
  const yes = (ok: boolean) => (ok ? '**met**' : '**missed**');
  const medianOf = (label: string) => {
    const r = abOf(label);
    return r ? median(r.rps) : NaN;
  };
  const vsNginx = medianOf('gateway (full pipeline) vs nginx');
  const bareVsNginx = medianOf('bare node:http proxy vs nginx');
  const undiciVsNginx = medianOf('bare undici proxy vs nginx');
  const batchedGain = medianOf('gateway, rate limit in batches');
  const hpmRatio = medianOf('http-proxy-middleware');
  const hpmCpuRatio = median(abOf('http-proxy-middleware')?.cpu ?? [NaN]);

  const loadAfter = loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  writeSection(
    'gateway',
    `## Gateway

\`npm run bench -- gateway\` — ${machine()}. autocannon, ${CONNECTIONS} connections, ${DURATION} s per target after a 2 s warm-up,
\`GET ${PATH}\` with a valid EdDSA bearer JWT to a trivial upstream (a node:http server answering a small JSON).
Every server runs in its own process (two upstreams, four gateways, three proxies, nginx); autocannon runs in the bench
process, so on this machine the load generator, the proxy and the upstream share the same two cores. The gateways run
their full pipeline: request id, helmet's security headers, CORS, metrics, route table, rate limit shared through Redis
(counted locally, sent in batches; one row with the old round trip per request), JWT check, denylist check, streaming
proxy on undici's client (a keep-alive pool per upstream instance). The two bare proxies check and rewrite nothing: one on
\`node:http\`'s client, one on undici's. nginx runs \`proxy_pass\` to the same upstream with a keepalive pool, \`access_log off\`
and **\`worker_processes ${nginx?.workers ?? 1}\`**: the gateway is one Node process (one event loop), so one nginx worker
is the like-for-like comparison. "CPU µs/request" is the CPU time (user + system, from \`/proc\`) the measured server
process (for nginx: master and workers) spent during its run, divided by the requests it answered — steadier than
req/s when other work shares the machine.
Load average at the start and end of the run: ${loadBefore} → ${loadAfter} (above ~2, other work shares the two cores: read
ratios as ±20%). "Token cache off" verifies the Ed25519 signature on every request
(\`JWT_CACHE_SIZE=0\`); the default caches verified tokens until their \`exp\`.

### Under load (${CONNECTIONS} connections)

${loadTable(loaded, 'direct (no proxy)')}

CPU per request, against nginx:

${cpuTable(loaded, nginx ? 'nginx proxy_pass' : 'direct (no proxy)')}

### The proxy step alone: own proxy vs http-proxy-middleware

A plain \`node:http\` server (no Express, no pipeline) in front of **two** upstream instances, round robin, failover to
the next instance on a refused connection: the gateway's \`proxyRequest\` against http-proxy-middleware ${HPM_VERSION}
configured for the same job (keep-alive agent, X-Forwarded-*, upstream timeout, request id, upstream
\`Access-Control-*\` dropped, failover in its error hook), once with its default plugins and once with them ejected
(\`bench/gateway/proxies.ts\`).

${cpuTable(proxies, 'own proxy (gateway/src/proxy.ts)')}

### A/B in alternating rounds (what the targets use)

${AB_ROUNDS} rounds of ${AB_SECONDS} s per side, A and B alternating (A B, B A, …), the ratio taken per round; the
single runs above can each catch a different share of the machine's other work.

${abTable(abRows)}

### One request at a time (no queueing: what one request pays)

${count} sequential requests over one kept-alive connection, each timed with \`process.hrtime\`.

${latencyTable(single, 'direct (no proxy)')}

### Targets

| target | measured | result |
|---|---|---|
| JWT-verified throughput ≥ 90% of verification off | ${pct(ratio)} | ${yes(ratio >= 0.9)} |
| added median latency vs direct < 2 ms, ${CONNECTIONS} connections | +${addedP50.toFixed(2)} ms | ${yes(addedP50 < 2)} |
| added median latency vs direct < 2 ms, one request at a time | +${addedP50Single.toFixed(3)} ms | ${yes(addedP50Single < 2)} |
| gateway, full pipeline (JWT verified, rate limit) ≥ 50% of nginx \`proxy_pass\` req/s (A/B median) | ${nginx ? `${pct(vsNginx)} (bare proxies: node:http ${pct(bareVsNginx)}, undici ${pct(undiciVsNginx)})` : 'nginx not installed'} | ${nginx ? yes(vsNginx >= 0.5) : '—'} |
| rate limit in batches vs a Redis round trip per request (req/s, A/B median) | ${pct(batchedGain)} | — |
| http-proxy-middleware (plugins ejected, its best case) within 10% of the own proxy: req/s (A/B median) | ${pct(hpmRatio)} | ${hpmRatio >= 0.9 ? '**within**' : '**not within**'} |
| http-proxy-middleware (plugins ejected) within 10% of the own proxy: CPU per request (A/B median) | ${pct(hpmCpuRatio)} | ${hpmCpuRatio <= 1.1 ? '**within**' : '**not within**'} (gateway/README.md: the decision) |

### Reading it

- nginx is the floor a Node proxy cannot reach on this machine: the bare \`node:http\` proxy (nothing checked, nothing
  rewritten) gets ${nginx ? pct(bareVsNginx) : 'n/a'} of nginx's req/s and the bare undici proxy ${nginx ? pct(undiciVsNginx) : 'n/a'}. The gateway's
  upstream client is undici since stop 21: side by side with the previous \`http.request\` client (alternating rounds,
  2026-12-03) it answers 147% of the requests per second at 69% of the CPU per request, and it now runs its whole
  pipeline at about the throughput of the bare \`node:http\` proxy. What it spends beyond the bare undici proxy is its own
  work: a CPU profile of the gateway under this load (\`--cpu-prof\`) puts the largest shares in socket writes (two
  sockets per request), header writing and validation (helmet's security headers included), garbage collection, undici
  and the gateway's own code (route table, request id, JWT and revocation checks, metrics, rate limiter).
- The Redis round trip per request was the first suspect and it was one: the row with it costs the most CPU per
  request of the cached-token gateways. See gateway/README.md (*Rate limits*) for the batching and its error bound.
- Verification is nearly free once a token is cached (the verified-token cache is keyed by the token, bounded, never
  past \`exp\`; the revoked-\`sid\` check still runs on every request). Without the cache every request pays an
  Ed25519 verification, which is the "token cache off" row.
- At ${CONNECTIONS} connections a closed-loop load generator measures queueing: median latency ≈ connections ÷ throughput.
  Even the bare \`node:http\` proxy adds more than 2 ms there on two shared cores, so that row of the target is bounded
  by CPU, not by verification. One request at a time, the gateway adds well under 2 ms.
- Earlier profiling found Express 5's per-request work to cost more CPU than the proxying itself; proxied routes run on
  a lean \`node:http\` path since (helmet's headers computed once and replayed, loggers created only when something
  logs, metric children cached); Express 5 still serves the gateway's own endpoints and refusals.
- http-proxy-middleware: gateway/README.md (*Why not http-proxy-middleware*) records the figures and the decision.
`,
  );
  process.stdout.write(
    `\nthroughput ratio ${(ratio * 100).toFixed(1)}%, added p50 ${addedP50} ms (50 conn), ${addedP50Single.toFixed(3)} ms (sequential), gateway/nginx ${(vsNginx * 100).toFixed(1)}%, bare/nginx ${(bareVsNginx * 100).toFixed(1)}%, batched/per-request ${(batchedGain * 100).toFixed(1)}%, hpm/own ${(hpmRatio * 100).toFixed(1)}%, load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')}\n`,
  );
} finally {
  await nginx?.stop();
  workers.stopAll();
  await issuer.close();
  await deleteRedisKeys(prefix);
}
