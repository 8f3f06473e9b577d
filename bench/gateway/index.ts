// npm run bench -- gateway
// Authenticated GET through the gateway vs the same route called directly, vs the gateway with
// verification off, vs a bare node:http proxy — one run, same machine, each server in its own process.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { TEST_REDIS_URL, startTestIssuer, uniqueName } from '../../shared/src/testing';
import { machine, writeSection } from '../lib';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = 50;
const PATH = '/api/v1/me/data';
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const children: ChildProcess[] = [];

function startWorker(role: string, env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, role], {
    env: { ...process.env, LOG_LEVEL: 'error', NODE_ENV: 'development', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const m = /READY (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
  });
}

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  mean: number;
  errors: number;
  non2xx: number;
}

async function measure(name: string, url: string, token: string, connections: number, duration: number): Promise<Row> {
  const opts = { url: url + PATH, connections, headers: { authorization: `Bearer ${token}` } };
  await autocannon({ ...opts, duration: 2 }); // warm-up: JIT, keep-alive sockets, caches
  const r = await autocannon({ ...opts, duration });
  const row = { name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, mean: r.latency.average, errors: r.errors + r.timeouts, non2xx: r.non2xx };
  process.stdout.write(`${name} (${connections} conn): ${row.rps.toFixed(0)} req/s, p50 ${row.p50} ms, mean ${row.mean.toFixed(2)} ms, p99 ${row.p99} ms, errors ${row.errors}, non-2xx ${row.non2xx}\n`);
  return row;
}

function table(rows: Row[], base: string): string {
  const baseRps = rows.find((r) => r.name === base)?.rps ?? NaN;
  return [
    `| target | req/s | ratio to ${base} | p50 ms | mean ms | p99 ms | errors | non-2xx |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.rps.toFixed(0)} | ${(r.rps / baseRps).toFixed(2)} | ${r.p50} | ${r.mean.toFixed(2)} | ${r.p99} | ${r.errors} | ${r.non2xx} |`,
    ),
  ].join('\n');
}

const issuer = await startTestIssuer();
const prefix = uniqueName('gwbench');
try {
  const upstream = await startWorker('upstream', {});
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
  const [gateway, noVerify, noCache, bare] = await Promise.all([
    startWorker('gateway', gatewayEnv({})),
    startWorker('gateway', gatewayEnv({ GATEWAY_VERIFY_JWT: 'false' })),
    startWorker('gateway', gatewayEnv({ JWT_CACHE_SIZE: '0' })),
    startWorker('bare-proxy', { UPSTREAM_URL: upstream }),
  ]);
  const token = await issuer.sign({}, { expiresIn: '1h' });

  const loaded: Row[] = [];
  loaded.push(await measure('direct (no proxy)', upstream, token, CONNECTIONS, DURATION));
  loaded.push(await measure('bare node:http proxy', bare, token, CONNECTIONS, DURATION));
  loaded.push(await measure('gateway, verification off', noVerify, token, CONNECTIONS, DURATION));
  loaded.push(await measure('gateway, JWT verified', gateway, token, CONNECTIONS, DURATION));
  loaded.push(await measure('gateway, JWT verified, token cache off', noCache, token, CONNECTIONS, DURATION));

  const single: Row[] = [];
  const short = Math.max(3, Math.round(DURATION / 2));
  single.push(await measure('direct (no proxy)', upstream, token, 1, short));
  single.push(await measure('gateway, verification off', noVerify, token, 1, short));
  single.push(await measure('gateway, JWT verified', gateway, token, 1, short));

  const by = (rows: Row[], name: string) => rows.find((r) => r.name === name)!;
  const ratio = by(loaded, 'gateway, JWT verified').rps / by(loaded, 'gateway, verification off').rps;
  const addedP50 = by(loaded, 'gateway, JWT verified').p50 - by(loaded, 'direct (no proxy)').p50;
  const addedP50Single = by(single, 'gateway, JWT verified').p50 - by(single, 'direct (no proxy)').p50;
  const addedMeanSingle = by(single, 'gateway, JWT verified').mean - by(single, 'direct (no proxy)').mean;
  const yes = (ok: boolean) => (ok ? '**met**' : '**missed**');

  writeSection(
    'gateway',
    `## Gateway

\`npm run bench -- gateway\` — ${machine()}. autocannon, ${CONNECTIONS} connections, ${DURATION} s per target after a 2 s warm-up,
\`GET ${PATH}\` with a valid EdDSA bearer JWT to a trivial upstream (a node:http server answering a small JSON).
Every server runs in its own process (upstream, three gateways, bare proxy); autocannon runs in the bench process,
so on this machine the load generator, the proxy and the upstream share the same two cores. The gateways run
their full pipeline: request id, helmet, CORS, metrics, route table, rate limit counted in Redis (one round trip
per request), JWT check, streaming proxy with keep-alive agents. "Token cache off" verifies the Ed25519
signature on every request (\`JWT_CACHE_SIZE=0\`); the default caches verified tokens until their \`exp\`.

### Under load (${CONNECTIONS} connections)

${table(loaded, 'direct (no proxy)')}

### One connection (no queueing: what one request pays)

${table(single, 'direct (no proxy)')}

### Targets

| target | measured | result |
|---|---|---|
| JWT-verified throughput ≥ 90% of verification off | ${(ratio * 100).toFixed(0)}% | ${yes(ratio >= 0.9)} |
| added median latency vs direct < 2 ms, ${CONNECTIONS} connections | +${addedP50.toFixed(2)} ms | ${yes(addedP50 < 2)} |
| added median latency vs direct < 2 ms, 1 connection | +${addedP50Single.toFixed(2)} ms (mean +${addedMeanSingle.toFixed(2)} ms) | ${yes(addedP50Single < 2)} |
`,
  );
  process.stdout.write(`\nthroughput ratio ${(ratio * 100).toFixed(1)}%, added p50 ${addedP50} ms (50 conn), ${addedP50Single} ms (1 conn)\n`);
} finally {
  for (const c of children) c.kill('SIGTERM');
  await issuer.close();
  const redis = new Redis(TEST_REDIS_URL);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
}
