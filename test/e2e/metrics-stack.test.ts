import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified } from '../helpers/users';

const TOKEN = 'stack-metrics-token-0123456789abcdef';
const SERVICES = ['auth', 'vault', 'gdpr', 'admin', 'credits'] as const;
const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

/** Names Prometheus itself provides (not exported by any target). */
const PROMETHEUS_OWN = new Set(['up']);
const PROMQL_WORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers left after removing strings, label matchers,
 * grouping clauses, range selectors, function calls, durations and Grafana's `$__` variables.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\w+/g, ' ')
    .replace(/\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(/g, '(')
    .replace(/\boffset\s+\d+[smhdwy]/g, ' ');
  const names = bare.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return [...new Set(names.filter((n) => !PROMQL_WORDS.has(n.toLowerCase())))];
}

/** `expr:` values of a Prometheus rules file (single line or a `|` block): the one field this test needs. */
function ruleExpressions(yaml: string): string[] {
  const lines = yaml.split('\n');
  const out: string[] = [];
  lines.forEach((line, i) => {
    const m = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (!m) return;
    if (m[2] !== '|' && m[2] !== '>') {
      out.push(m[2] ?? '');
      return;
    }
    const indent = (m[1] ?? '').length;
    const block: string[] = [];
    for (const next of lines.slice(i + 1)) {
      if (next.trim() !== '' && next.length - next.trimStart().length <= indent) break;
      block.push(next.trim());
    }
    out.push(block.join(' '));
  });
  return out;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}

/** Metric names of an exposition: every `# TYPE` line (a series with no sample yet still has one), histograms expanded. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', kind] = m;
    names.add(name);
    if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (kind === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

/** A counter summed over every instance of a service (what Prometheus' `sum()` sees); undefined when none has it. */
function total(texts: string[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = texts.map((t) => sample(t, name, labels)).filter((v): v is number => v !== undefined);
  return found.length ? found.reduce((a, b) => a + b, 0) : undefined;
}

function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('metrics of a running stack: business counters, and every name the dashboard and the alerts use', () => {
  let s: Stack;
  const scrape = async (url: string) => {
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    return res.text();
  };
  const urlOf = (svc: (typeof SERVICES)[number]) => (svc === 'auth' ? s.services.auth[0]?.url : s.services[svc]?.url) ?? '';
  /** Every instance of a service (E2E_INSTANCES=2 runs two): counters are per instance, Prometheus sums them. */
  const scrapeAll = (svc: (typeof SERVICES)[number]) => Promise.all(s.instances[svc].map((h) => scrape(h.url)));

  beforeAll(async () => {
    s = await startStack({
      services: [...SERVICES],
      env: { METRICS_TOKEN: TOKEN },
      serviceEnv: { vault: { MANA_AUTH_KEK_ROTATED_AT: '2026-01-01' } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('counts sign-ins, refreshes, key fetches, credits and a whole erasure', async () => {
    const { email, password } = await registerVerified(s);
    expect((await call(`${s.gatewayUrl}/api/v1/auth/login`, { body: { email, password: `${password}x` } })).status).toBe(401);
    const { accessToken, refreshToken } = await login(s, email, password);
    expect((await call(`${s.gatewayUrl}/api/v1/auth/refresh`, { body: { refreshToken } })).status).toBe(200);
    expect((await call(`${s.gatewayUrl}/api/v1/me/encryption-vault/init`, { method: 'POST', token: accessToken })).status).toBe(200);
    expect((await call(`${s.gatewayUrl}/api/v1/me/encryption-vault/key`, { token: accessToken })).status).toBe(200);
    const erase = await call(`${s.gatewayUrl}/api/v1/me/data`, { method: 'DELETE', token: accessToken, body: { confirm: 'DELETE' } });
    expect(erase.status).toBe(202);

    const gdpr = await eventually(async () => {
      const texts = await scrapeAll('gdpr');
      return total(texts, 'gdpr_erasures_completed_total', { late: 'false' }) === 1 ? texts : undefined;
    }, 30_000);
    expect(total(gdpr, 'gdpr_erasures_started_total', { origin: 'self' })).toBe(1);
    expect(total(gdpr, 'gdpr_erasure_duration_seconds_count')).toBe(1);
    // A gauge read from the database: every instance reports the same value.
    for (const text of gdpr) expect(sample(text, 'gdpr_erasures_overdue')).toBe(0);
    expect(total(gdpr, 'mana_bus_consumed_total', { type: 'user.erasure.completed.v1' })).toBeGreaterThanOrEqual(4);

    const auth = await scrapeAll('auth');
    expect(total(auth, 'auth_sign_ins_total', { method: 'password', outcome: 'success' })).toBe(1);
    expect(total(auth, 'auth_sign_ins_total', { method: 'password', outcome: 'invalid_password' })).toBe(1);
    expect(total(auth, 'auth_token_refreshes_total')).toBe(1);
    expect(total(auth, 'auth_registrations_total')).toBe(1);
    for (const text of auth) expect(sample(text, 'auth_signing_key_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(total(auth, 'mana_http_requests_total', { route: '/api/v1/auth/login', status: '401' })).toBe(1);

    const vault = await scrapeAll('vault');
    expect(total(vault, 'vault_key_fetches_total', { outcome: 'server_wrapped' })).toBe(1);
    for (const text of vault) {
      expect(sample(text, 'vault_kek_dev_fallback')).toBe(1);
      const kekAge = sample(text, 'vault_kek_age_seconds', { kek_id: 'dev-zero' }) ?? 0;
      expect(Math.abs(kekAge - (Date.now() - Date.parse('2026-01-01')) / 1000)).toBeLessThan(60);
    }

    const credits = await scrapeAll('credits');
    expect(total(credits, 'credits_granted_total', { category: 'promo' })).toBeGreaterThan(0);
  });

  it('every metric a dashboard panel or an alert rule queries is exported by the gateway or a service', async () => {
    const exported = new Set<string>(PROMETHEUS_OWN);
    for (const url of [s.gatewayUrl, ...SERVICES.map(urlOf)]) for (const name of exportedNames(await scrape(url))) exported.add(name);

    const datasourceUid = /^\s+uid:\s*(\S+)$/m.exec(read('infra/grafana/provisioning/datasources/prometheus.yml'))?.[1];
    expect(datasourceUid).toBeTruthy();
    const dashboards = readdirSync(new URL('infra/grafana/dashboards/', root)).filter((f) => f.endsWith('.json'));
    expect(dashboards.length).toBeGreaterThan(0);
    const queried = new Map<string, string>();
    for (const file of dashboards) {
      const dash = JSON.parse(read(`infra/grafana/dashboards/${file}`)) as { panels: Panel[] };
      const rows = dash.panels.filter((p) => p.type === 'row').map((p) => p.title);
      expect(rows).toEqual(expect.arrayContaining(['gateway', ...SERVICES.map((svc) => `${svc}-svc`)]));
      expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length);
      // Every query goes to the datasource the provisioning creates.
      const uids = dash.panels.flatMap((p) => [p.datasource?.uid, ...(p.targets ?? []).map((t) => t.datasource?.uid)]).filter(Boolean);
      expect(new Set(uids)).toEqual(new Set([datasourceUid]));
      for (const panel of dash.panels)
        for (const t of panel.targets ?? []) for (const name of metricNames(t.expr)) queried.set(name, `${file}: ${panel.title}`);
    }
    const rules = readdirSync(new URL('infra/prometheus/rules/', root)).filter((f) => f.endsWith('.yml') && !f.endsWith('.test.yml'));
    expect(rules.length).toBeGreaterThan(0);
    for (const file of rules)
      for (const expr of ruleExpressions(read(`infra/prometheus/rules/${file}`)))
        for (const name of metricNames(expr)) queried.set(name, `rules/${file}`);

    expect(queried.size).toBeGreaterThan(30);
    const unknown = [...queried].filter(([name]) => !exported.has(name)).map(([name, where]) => `${name} (${where})`);
    expect(unknown).toEqual([]);
  });

  it('every alert names a runbook section that docs/OPERATIONS.md has', () => {
    const anchors = new Set(
      [...read('docs/OPERATIONS.md').matchAll(/^#{2,4} (.+)$/gm)].map((m) =>
        (m[1] ?? '')
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    const runbooks = [...read('infra/prometheus/rules/mana-alerts.yml').matchAll(/runbook: docs\/OPERATIONS\.md#(\S+)/g)].map((m) => m[1]);
    expect(runbooks.length).toBeGreaterThan(10);
    expect(runbooks.filter((a) => !anchors.has(a ?? ''))).toEqual([]);
  });

  it('each service refuses a scrape without the token', async () => {
    for (const svc of SERVICES) {
      const res = await fetch(`${urlOf(svc)}/metrics`);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'TOKEN_INVALID' });
    }
  });
});
