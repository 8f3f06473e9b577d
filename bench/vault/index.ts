// npm run bench -- vault
// GET /key (unwrap + audit INSERT) against GET /status (one indexed read, no audit) through the gateway,
// same run, same machine; vault-svc and the gateway each in their own process, real PostgreSQL.
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { TEST_REDIS_URL, createTestDatabase, startTestIssuer, uniqueName, deleteRedisKeys } from '../../shared/src/testing';
import { Workers, load, machine, writeSection, type LoadResult } from '../lib';

const DURATION = Number(process.env.BENCH_DURATION ?? 6);
/**
 * The machine is shared, so load drifts during a run: targets are measured in alternating rounds, each
 * /key round is compared with the /status round just before it, and the median of those paired ratios is
 * the result. Every round is printed.
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = 50;
const USERS = 200;
const VAULT = '/api/v1/me/encryption-vault';
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const workers = new Workers(WORKER);
const startWorker = (role: string, env: Record<string, string>) => workers.start(role, env);

type Row = LoadResult;

/** Each request carries the token of one of USERS users (round robin), as real traffic would. */
async function measure(name: string, url: string, tokens: string[], duration: number): Promise<Row> {
  let i = 0;
  const opts: autocannon.Options = {
    url,
    connections: CONNECTIONS,
    requests: [
      { setupRequest: (req) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${tokens[i++ % tokens.length]}` } }) },
    ],
  };
  await autocannon({ ...opts, duration: 2 }); // warm-up
  const row = await load(name, { ...opts, duration });
  process.stdout.write(
    `${name}: ${row.rps.toFixed(0)} req/s, p50 ${row.p50} ms, mean ${row.mean.toFixed(2)} ms, p99 ${row.p99} ms, errors ${row.errors}, non-2xx ${row.non2xx}\n`,
  );
  return row;
}

const issuer = await startTestIssuer();
const db = await createTestDatabase('vault_bench');
const prefix = uniqueName('vaultbench');
try {
  const common = { AUTH_JWKS_URL: issuer.jwksUrl, BASE_URL: issuer.issuer, JWT_AUDIENCE: issuer.audience, AMQP_URL: '' };
  // Both vault processes share the database (migrations take an advisory lock) and the KEK.
  const kek = randomBytes(32).toString('base64');
  const vaultEnv = (extra: Record<string, string>) => ({
    ...common,
    VAULT_SVC_PORT: '0',
    DATABASE_URL: db.url,
    MANA_AUTH_KEK: kek,
    ...extra,
  });
  const fast = await startWorker('vault', vaultEnv({}));
  const durable = await startWorker('vault', vaultEnv({ VAULT_DURABLE_FETCH_AUDIT: 'true' }));
  const gatewayEnv = (vaultUrl: string) => ({
    ...common,
    PORT: '0',
    VAULT_SVC_URL: vaultUrl,
    AUTH_SVC_URL: 'http://127.0.0.1:9',
    REDIS_URL: TEST_REDIS_URL,
    RATE_LIMIT_PREFIX: prefix,
    RATE_LIMIT_POINTS: '100000000',
  });
  const [gateway, gatewayDurable] = await Promise.all([
    startWorker('gateway', gatewayEnv(fast)),
    startWorker('gateway', gatewayEnv(durable)),
  ]);

  const tokens = await Promise.all(
    Array.from({ length: USERS }, (_, i) => issuer.sign({ sub: `bench-user-${i}`, sid: `s-${i}` }, { expiresIn: '1h' })),
  );
  for (const token of tokens) {
    const res = await fetch(`${gateway}${VAULT}/init`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    if (res.status !== 200) throw new Error(`init failed: ${res.status}`);
  }

  const targets: [string, string][] = [
    ['GET /status', `${gateway}${VAULT}/status`],
    ['GET /key', `${gateway}${VAULT}/key`],
    ['GET /key, durable audit commit', `${gatewayDurable}${VAULT}/key`],
  ];
  const loadBefore = loadavg()[0].toFixed(1);
  const runs = new Map<string, Row[]>(targets.map(([name]) => [name, []]));
  for (let round = 0; round < ROUNDS; round++)
    for (const [name, url] of targets) runs.get(name)!.push(await measure(name, url, tokens, DURATION));
  const middle = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
  const statusRuns = runs.get('GET /status')!;
  const paired = (name: string) => runs.get(name)!.map((r, i) => r.rps / statusRuns[i].rps);
  const ratio = middle(paired('GET /key'));
  const durableRatio = middle(paired('GET /key, durable audit commit'));
  const p99 = middle(runs.get('GET /key')!.map((r) => r.p99));
  const statusP99 = middle(statusRuns.map((r) => r.p99));
  const roundsTable = [
    '| round | target | req/s | ratio to /status of the round | p50 ms | mean ms | p99 ms | errors | non-2xx |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
    ...Array.from({ length: ROUNDS }, (_, i) =>
      targets.map(([name]) => {
        const r = runs.get(name)![i];
        return `| ${i + 1} | ${name} | ${r.rps.toFixed(0)} | ${(r.rps / statusRuns[i].rps).toFixed(2)} | ${r.p50} | ${r.mean.toFixed(2)} | ${r.p99} | ${r.errors} | ${r.non2xx} |`;
      }),
    ).flat(),
  ].join('\n');
  const loadAfter = loadavg()[0].toFixed(1);

  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const { rows: audit } = await admin.query<{ n: number }>(
    "select count(*)::int as n from vault.encryption_vault_audit where action = 'fetch'",
  );
  await admin.end();

  const yes = (ok: boolean) => (ok ? '**met**' : '**missed**');
  writeSection(
    'vault',
    `## Vault

\`npm run bench -- vault\` — ${machine()}. autocannon, ${CONNECTIONS} connections, ${DURATION} s per target after a 2 s warm-up,
${ROUNDS} alternating rounds (status, key, durable key, status, …); each /key round is compared with the /status round
just before it and the median of those paired ratios is the result (load drifts on this shared machine);
through the gateway (JWT verified, rate limit counted in Redis) to vault-svc on the local PostgreSQL; ${USERS} users,
each request carrying one of their tokens in turn. Gateway and vault-svc run in their own processes; autocannon runs in
the bench process, so all of them share the same two cores.

- \`GET /status\`: one round trip (role + user scope + one indexed read), no decryption, no audit row.
- \`GET /key\`: the same read, an AES-256-GCM unwrap, and an audit row per fetch, written by group commit
  (rows of fetches arriving while one INSERT is in flight share the next one; each key is answered only after
  its row is committed), with \`synchronous_commit = off\` for those transactions (the default,
  \`VAULT_DURABLE_FETCH_AUDIT=false\`).
- \`GET /key, durable audit commit\`: \`VAULT_DURABLE_FETCH_AUDIT=true\` — every batch waits for its WAL flush.

${roundsTable}

Median of the paired ratios: \`/key\` ${(ratio * 100).toFixed(0)}% of \`/status\`, durable \`/key\` ${(durableRatio * 100).toFixed(0)}%.
Median p99: \`/status\` ${statusP99} ms, \`/key\` ${p99} ms.

1-minute load average before / after the measurements: ${loadBefore} / ${loadAfter} (other work on the machine
shows up here and in the spread between rounds).

Fetch audit rows written during the run: ${audit[0]?.n ?? 0} (one per successful fetch, warm-ups included).

### Targets

| target | measured | result |
|---|---|---|
| \`/key\` throughput ≥ 85% of \`/status\` (median paired ratio) | ${(ratio * 100).toFixed(0)}% | ${yes(ratio >= 0.85)} |
| \`/key\` p99 < 20 ms (median over rounds) | ${p99} ms | ${yes(p99 < 20)} |
`,
  );
  process.stdout.write(`\n/key vs /status ${(ratio * 100).toFixed(1)}%, /key p99 ${p99} ms\n`);
} finally {
  workers.stopAll();
  await new Promise((r) => setTimeout(r, 500));
  await issuer.close();
  await db.drop();
  await deleteRedisKeys(prefix);
}
