// npm run bench -- admin
// The admin directory at 1,000,000 users: GET /api/v1/admin/users with a search (prefix and substring) and a deep
// keyset page, each p95 < 50 ms. admin-svc runs in this process on the local PostgreSQL (memory bus); the rows are
// generated with one INSERT … SELECT generate_series. Query plans (EXPLAIN ANALYZE) go into docs/BENCHMARKS.md.
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import pg from 'pg';
import { createTestDatabase, startTestIssuer } from '../../shared/src/testing';
import { startAdminService } from '../../admin-svc/src/server';
import { machine, writeSection } from '../lib';

const USERS = Number(process.env.BENCH_USERS ?? 1_000_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300);
/** Requests in flight at once (1: the latency one admin sees; more: several admins at once). */
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 1);
const DOMAINS = [
  'gmail.com',
  'outlook.com',
  'yahoo.com',
  'proton.me',
  'web.de',
  'gmx.net',
  'icloud.com',
  'mana.how',
  'example.org',
  'posteo.de',
];
/** The generated names and emails are md5 pieces (as in the INSERT below), so trigrams spread like real text's. */
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

const rand = (n: number) => Math.floor(Math.random() * n);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

interface Measured {
  name: string;
  example: string;
  p50: number;
  p95: number;
  p99: number;
  rows: number;
}

/** `REQUESTS` requests, `CONCURRENCY` at a time, each with a fresh path (no two alike: no cache helps). */
async function measure(name: string, base: string, token: string, path: () => string): Promise<Measured> {
  const times: number[] = [];
  let rows = 0;
  let example = '';
  const one = async () => {
    const p = path();
    example ||= p;
    const t0 = performance.now();
    const res = await fetch(`${base}${p}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { users?: unknown[] };
    times.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`${name}: ${res.status} ${JSON.stringify(body)}`);
    rows += body.users?.length ?? 0;
  };
  for (let i = 0; i < 20; i++) await one(); // warm-up
  times.length = 0;
  rows = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < REQUESTS) await one();
    }),
  );
  times.sort((a, b) => a - b);
  const m = { name, example, p50: pct(times, 50), p95: pct(times, 95), p99: pct(times, 99), rows: rows / times.length };
  process.stdout.write(
    `${name}: p50 ${m.p50.toFixed(1)} ms, p95 ${m.p95.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms, ${m.rows.toFixed(1)} rows/answer\n`,
  );
  return m;
}

const issuer = await startTestIssuer();
const db = await createTestDatabase('admin_bench');
const sql = new pg.Pool({ connectionString: db.url, max: 2 });
let service: Awaited<ReturnType<typeof startAdminService>> | undefined;
try {
  service = await startAdminService({
    env: {
      DATABASE_URL: db.url,
      AUTH_JWKS_URL: issuer.jwksUrl,
      BASE_URL: issuer.issuer,
      JWT_AUDIENCE: issuer.audience,
      AMQP_URL: '',
      ADMIN_SVC_PORT: '0',
      LOG_LEVEL: 'error',
      NODE_ENV: 'development',
    },
  });
  const t0 = performance.now();
  // Building the trigram index once after the load is much faster than maintaining it row by row.
  await sql.query('drop index admin.directory_users_search_idx');
  await sql.query(
    `insert into admin.directory_users (id, email, name, role, email_verified, tier, created_at, banned)
     select 'u' || lpad(i::text, 8, '0'),
            substr(md5(i::text), 1, 8) || '.' || i || '@' || ($2::text[])[1 + i % 10],
            initcap(substr(md5('f' || i), 1, 7)) || ' ' || initcap(substr(md5('l' || i), 1, 9)),
            case when i % 1000 = 0 then 'admin' else 'user' end,
            i % 3 <> 0,
            ($3::text[])[1 + i % 4],
            timestamptz '2020-01-01' + i * interval '1 minute',
            i % 500 = 0
     from generate_series(1, $1::int) as i`,
    [USERS, DOMAINS, ['public', 'beta', 'alpha', 'founder']],
  );
  await sql.query(
    `create index directory_users_search_idx on admin.directory_users using gin ((lower(email) || ' ' || lower(name)) gin_trgm_ops)`,
  );
  await sql.query('vacuum analyze admin.directory_users');
  const loadSeconds = (performance.now() - t0) / 1000;
  process.stdout.write(`${USERS} rows loaded and indexed in ${loadSeconds.toFixed(0)} s\n`);

  const token = await issuer.sign({ sub: 'bench-admin', sid: 's-admin', role: 'admin' }, { expiresIn: '1h' });
  const base = `${service.url}/api/v1/admin`;
  // Deep keyset pages: cursors of rows between 80% and 99% down the default order (-createdAt), taken once.
  const deep = await sql.query<{ created_at: Date; id: string }>(
    `select created_at, id from admin.directory_users order by created_at desc, id desc offset $1 limit 200`,
    [Math.floor(USERS * 0.8)],
  );
  const cursors = deep.rows.map((r) => Buffer.from(JSON.stringify([r.created_at.toISOString(), r.id])).toString('base64url'));
  const loadBefore = loadavg()[0]?.toFixed(1);
  const n = () => 1 + rand(USERS);
  const results = [
    await measure(
      'search, email prefix (page mode, with total)',
      base,
      token,
      () => `/users?search=${md5(String(n())).slice(0, 8)}&limit=20`,
    ),
    await measure(
      'search, name substring (page mode, with total)',
      base,
      token,
      () => `/users?search=${md5(`l${n()}`).slice(2, 8)}&limit=20`,
    ),
    await measure(
      'search, email substring, keyset mode',
      base,
      token,
      () => `/users?search=${encodeURIComponent(`.${n()}@`)}&cursor=&limit=20`,
    ),
    await measure(
      'deep keyset page (-createdAt, 80–99 % down)',
      base,
      token,
      () => `/users?cursor=${cursors[rand(cursors.length)]}&limit=20`,
    ),
    await measure(
      'deep keyset page with filters (tier, banned=false)',
      base,
      token,
      () => `/users?tier=beta&banned=false&cursor=${cursors[rand(cursors.length)]}&limit=20`,
    ),
  ];
  const loadAfter = loadavg()[0]?.toFixed(1);

  // The plans of the statements the service sends (same SQL shape as admin-svc/src/db/directory.ts).
  const cols = `id, email, name, role, tier, email_verified, (banned and (ban_expires_at is null or ban_expires_at > now())) as banned, created_at`;
  const searchExpr = `(lower(email) || ' ' || lower(name))`;
  const [c0] = deep.rows;
  const plans: [string, string, unknown[]][] = [
    [
      'search, email prefix: the page',
      `select ${cols} from admin.directory_users where ${searchExpr} like $1 order by created_at desc, id desc limit 20`,
      [`%${md5('424242').slice(0, 8)}%`],
    ],
    [
      'search, email prefix: the total',
      `select count(*) from admin.directory_users where ${searchExpr} like $1`,
      [`%${md5('424242').slice(0, 8)}%`],
    ],
    [
      'search, name substring',
      `select ${cols} from admin.directory_users where ${searchExpr} like $1 order by created_at desc, id desc limit 20`,
      [`%${md5('l424242').slice(2, 8)}%`],
    ],
    [
      'deep keyset page',
      `select ${cols} from admin.directory_users where (created_at, id) < ($1::timestamptz, $2) order by created_at desc, id desc limit 21`,
      [c0?.created_at, c0?.id],
    ],
  ];
  // The statements alone (pool → PostgreSQL, no HTTP, no JWT): what the database costs, apart from the process.
  const statementTimes: [string, number, number][] = [];
  for (const [title, text, params] of plans) {
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      const k = String(n());
      const row = deep.rows[rand(deep.rows.length)];
      const p = title.startsWith('deep')
        ? [row?.created_at, row?.id]
        : [`%${title.includes('name') ? md5(`l${k}`).slice(2, 8) : md5(k).slice(0, 8)}%`];
      const t = performance.now();
      await sql.query(text, p.length ? p : params);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    statementTimes.push([title, pct(times, 50), pct(times, 95)]);
  }
  const planText: string[] = [];
  for (const [title, text, params] of plans) {
    const { rows } = await sql.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers) ${text}`, params);
    planText.push(`#### ${title}\n\n\`\`\`\n${rows.map((r) => r['QUERY PLAN']).join('\n')}\n\`\`\``);
  }

  const yes = (ok: boolean) => (ok ? '**met**' : '**missed**');
  writeSection(
    'admin',
    `## Admin directory

\`npm run bench -- admin\` — ${machine()}. ${USERS.toLocaleString('en')} rows in \`admin.directory_users\` (one
\`INSERT … SELECT generate_series\`, loaded and indexed in ${loadSeconds.toFixed(0)} s), admin-svc in the bench process
on the local PostgreSQL, requests straight to admin-svc (JWT verified there; the gateway's cost is measured in its own
section). ${REQUESTS} requests per target after 20 warm-ups, ${CONCURRENCY} at a time, each with a different search term or
cursor, so no answer is served from a cache. Latency is the whole HTTP round trip (both statements of page mode:
the page and its \`total\`). 1-minute load average before / after: ${loadBefore} / ${loadAfter} (the machine is shared).

| target | example | rows per answer | p50 ms | p95 ms | p99 ms | p95 < 50 ms |
|---|---|---:|---:|---:|---:|---|
${results.map((r) => `| ${r.name} | \`${r.example}\` | ${r.rows.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.p99.toFixed(1)} | ${yes(r.p95 < 50)} |`).join('\n')}

The same statements sent alone from a pool (100 each, fresh terms/cursors, one at a time) — the database's share:

| statement | p50 ms | p95 ms |
|---|---:|---:|
${statementTimes.map(([t, p50, p95]) => `| ${t} | ${p50.toFixed(1)} | ${p95.toFixed(1)} |`).join('\n')}

Search uses one GIN trigram index (\`pg_trgm\`) over \`lower(email) || ' ' || lower(name)\`, so a prefix and a
substring are the same query (\`LIKE '%term%'\`). Terms shorter than three characters have no trigram to look up and
fall back to scanning; a term that matches a large part of the directory (\`gmail\`) is as slow as counting that
part — use keyset mode (no \`total\`) or a filter for those. Keyset pages walk the btree index
\`(created_at, id)\` (backward for \`-createdAt\`) from the cursor, so page 40,000 costs what page 1 costs.

### Query plans (EXPLAIN ANALYZE, BUFFERS)

${planText.join('\n\n')}
`,
  );
  const worst = Math.max(...results.map((r) => r.p95));
  process.stdout.write(`\nworst p95 ${worst.toFixed(1)} ms\n`);
} finally {
  await service?.close();
  await sql.end();
  await db.drop();
  await issuer.close();
}
