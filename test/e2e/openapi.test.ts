import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromium } from 'playwright-core';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import type { OpenApiDocument, ServiceHandle } from '@mana/shared';
import { expressRoutes } from '@mana/shared/testing';
import { matchRoute, type UpstreamName } from '../../gateway/src/routes';
import { gatewayApi } from '../../gateway/src/reference';
import { sessionResponse, sessionsResponse, tokenPairResponse } from '../../auth-svc/src/routes/openapi';
import { keyResponse, statusResponse } from '../../vault-svc/src/routes/openapi';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { registerVerified } from '../helpers/users';

/**
 * The API reference (issue 14): every route of every service has an entry in its `src/routes/openapi.ts`,
 * every entry is a route, the gateway routes each documented path to the service that documents it with
 * the access the entry declares, and /docs renders the merged document under the gateway's CSP.
 */

const SERVICES: ReadonlyArray<[name: string, upstream: UpstreamName]> = [
  ['auth-svc', 'auth'],
  ['vault-svc', 'vault'],
  ['gdpr-svc', 'gdpr'],
  ['admin-svc', 'admin'],
  ['credits-svc', 'credits'],
];
/** Served by every service on its own port for operators and the gateway, never routed by the gateway. */
const SERVICE_LOCAL = new Set(['/healthz', '/readyz', '/metrics', '/openapi.json']);
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

let stack: Stack;
let doc: OpenApiDocument;
const parts = new Map<string, OpenApiDocument>();

const handleOf = (upstream: UpstreamName): ServiceHandle => {
  const h = upstream === 'auth' ? stack.services.auth[0] : stack.services[upstream];
  if (!h) throw new Error(`${upstream} is not running`);
  return h;
};
/** `/a/{id}` → `/a/:id` (the Express spelling, as in the openapi.ts files). */
const expressPath = (p: string) => p.replace(/\{([^}]+)\}/g, ':$1');
/** A concrete path for the gateway's route table: `/a/{id}` → `/a/x`. */
const samplePath = (p: string) => p.replace(/\{[^}]+\}/g, 'x');

beforeAll(async () => {
  stack = await startStack({ services: ['vault', 'credits', 'admin', 'gdpr'] });
  const res = await fetch(`${stack.gatewayUrl}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as OpenApiDocument;
  for (const [name, upstream] of SERVICES) {
    const part = await fetch(`${handleOf(upstream).url}/openapi.json`);
    expect(part.status, name).toBe(200);
    parts.set(name, (await part.json()) as OpenApiDocument);
  }
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('the merged document', () => {
  test('is valid OpenAPI 3.1 (Redocly’s structural rules)', async () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    const problems = await lintFromString({
      source: JSON.stringify(doc),
      absoluteRef: '/openapi.json',
      config: await createConfig({ rules: { struct: 'error' } }),
    });
    const errors = problems.filter((p) => p.severity === 'error').map((p) => `${p.location[0]?.pointer ?? ''}: ${p.message}`);
    expect(errors).toEqual([]);
  });

  test('carries every part and the request schemas of the routes (zod → JSON Schema)', () => {
    const login = doc.paths['/api/v1/auth/login']?.post;
    const schema = (
      login?.requestBody as { content: Record<string, { schema: { required?: string[]; properties: Record<string, unknown> } }> }
    ).content['application/json'].schema;
    expect(schema.required).toEqual(expect.arrayContaining(['email', 'password']));
    expect(schema.properties).toHaveProperty('deviceId');
    expect(doc.paths['/api/v1/admin/users']?.get?.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'limit', in: 'query', schema: expect.objectContaining({ maximum: 100 }) })]),
    );
    expect(doc.paths['/api/v1/internal/credits/use']?.post?.security).toEqual([{ serviceKey: [] }]);
    // Better Auth's native endpoints, from its own generator.
    expect(doc.paths['/api/auth/sign-in/email']?.post).toBeDefined();
    expect(doc.paths['/api/auth/get-session']?.get).toBeDefined();
    // Its reference page is not switched on.
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/api/auth/reference') || p.startsWith('/api/auth/open-api'))).toEqual([]);
  });

  test('no path is described by two services', () => {
    const owner = new Map<string, string>();
    const twice: string[] = [];
    for (const [name, part] of parts)
      for (const [path, item] of Object.entries(part.paths))
        for (const method of METHODS) {
          if (!item[method] || SERVICE_LOCAL.has(path)) continue;
          const key = `${method.toUpperCase()} ${path}`;
          if (owner.has(key)) twice.push(`${key}: ${owner.get(key)} and ${name}`);
          owner.set(key, name);
        }
    expect(twice).toEqual([]);
  });
});

describe('coverage: a route without an entry, or an entry without a route, fails', () => {
  test.each(SERVICES)('%s', async (name, upstream) => {
    const routes = expressRoutes(handleOf(upstream).server).filter((r) => !SERVICE_LOCAL.has(r.path));
    const part = parts.get(name);
    if (!part) throw new Error(`no part of ${name}`);
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(part.paths))
      for (const method of METHODS) if (item[method]) documented.add(`${method.toUpperCase()} ${expressPath(path)}`);

    const missing: string[] = [];
    for (const r of routes) {
      // Better Auth's catch-all: its endpoints come from its own generator (checked below through the gateway).
      if (r.method === 'ALL' && r.path === '/api/auth/*splat') {
        if (![...documented].some((d) => d.includes(' /api/auth/')))
          missing.push('ALL /api/auth/* (no Better Auth endpoint in the document)');
        continue;
      }
      if (!documented.has(`${r.method} ${r.path}`)) missing.push(`${r.method} ${r.path}`);
    }
    const served = new Set(routes.map((r) => `${r.method} ${r.path}`));
    const stale = [...documented].filter((d) => !d.includes(' /api/auth/') && !served.has(d));

    expect(missing, `routes of ${name} without an entry: add them to ${name}/src/routes/openapi.ts`).toEqual([]);
    expect(stale, `entries of ${name}/src/routes/openapi.ts that no route serves`).toEqual([]);
  });

  test('every documented path reaches the service that documents it, with the access it declares', () => {
    const wrong: string[] = [];
    for (const [path, item] of Object.entries(doc.paths))
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const service = op['x-mana-service'];
        if (service === 'gateway') continue;
        const route = matchRoute(samplePath(path));
        const upstream = SERVICES.find(([name]) => name === service)?.[1];
        if (!route || route.upstream !== upstream)
          wrong.push(`${method.toUpperCase()} ${path}: documented by ${service}, routed to ${route?.upstream ?? 'nothing'}`);
        else if (route.access !== op['x-mana-access'])
          wrong.push(
            `${method.toUpperCase()} ${path}: documented as ${op['x-mana-access']}, the gateway's route table says ${route.access}`,
          );
      }
    expect(wrong).toEqual([]);
  });

  test('the gateway’s own endpoints answer, and nothing else of the gateway is left out', async () => {
    for (const op of gatewayApi) {
      expect(matchRoute(op.path), op.path).toBeUndefined();
      const res = await fetch(`${stack.gatewayUrl}${op.path}`, { method: op.method.toUpperCase() });
      expect(res.status, `${op.method} ${op.path}`).not.toBe(404);
      await res.arrayBuffer();
    }
    const own = Object.entries(doc.paths)
      .filter(([, item]) => METHODS.some((m) => item[m]?.['x-mana-service'] === 'gateway'))
      .map(([p]) => p);
    expect(own.sort()).toEqual([...new Set(gatewayApi.map((o) => o.path))].sort());
  });

  test('every Better Auth endpoint in the document is one Better Auth serves (no 404 through the gateway)', async () => {
    const unknown = await fetch(`${stack.gatewayUrl}/api/auth/no-such-endpoint-${Date.now()}`, { method: 'POST' });
    expect(unknown.status).toBe(404);
    await unknown.arrayBuffer();
    const stale: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.startsWith('/api/auth/')) continue;
      for (const method of METHODS) {
        if (!item[method]) continue;
        const res = await fetch(`${stack.gatewayUrl}${samplePath(path)}`, {
          method: method.toUpperCase(),
          headers: method === 'get' || method === 'delete' ? {} : { 'content-type': 'application/json' },
          body: method === 'get' || method === 'delete' ? undefined : '{}',
          redirect: 'manual',
        });
        await res.arrayBuffer();
        if (res.status === 404 && !res.headers.get('content-type')?.includes('json')) stale.push(`${method.toUpperCase()} ${path}`);
      }
    }
    expect(stale).toEqual([]);
  }, 60_000);
});

describe('documented answers are the real ones (the response schemas of the openapi.ts files parse real answers)', () => {
  test('the token API and the vault, through the gateway', async () => {
    const gw = stack.gatewayUrl;
    const { email, password } = await registerVerified(stack);
    const login = await call(`${gw}/api/v1/auth/login`, { body: { email, password, deviceId: 'openapi-1', deviceName: 'Reference test' } });
    expect(login.status).toBe(200);
    const pair = tokenPairResponse.parse(login.body);
    expect(sessionResponse.parse((await call(`${gw}/api/v1/auth/session`, { token: pair.accessToken })).body).session.current).toBe(true);
    expect(sessionsResponse.parse((await call(`${gw}/api/v1/auth/sessions`, { token: pair.accessToken })).body).sessions).toHaveLength(1);
    const refreshed = await call(`${gw}/api/v1/auth/refresh`, { body: { refreshToken: pair.refreshToken } });
    const token = tokenPairResponse.parse(refreshed.body).accessToken;

    statusResponse.parse((await call(`${gw}/api/v1/me/encryption-vault/status`, { token })).body);
    keyResponse.parse((await call(`${gw}/api/v1/me/encryption-vault/init`, { method: 'POST', token })).body);
    keyResponse.parse((await call(`${gw}/api/v1/me/encryption-vault/key`, { token })).body);
    expect(statusResponse.parse((await call(`${gw}/api/v1/me/encryption-vault/status`, { token })).body).vaultExists).toBe(true);
  });

  test('and the merged document carries them', () => {
    const schemaOf = (path: string, method: 'get' | 'post') =>
      (doc.paths[path]?.[method]?.responses['200'] as { content: Record<string, { schema: Record<string, unknown> }> }).content[
        'application/json'
      ].schema;
    expect(schemaOf('/api/v1/auth/session', 'get')).toMatchObject({
      properties: { user: expect.any(Object), session: expect.any(Object) },
    });
    expect(schemaOf('/api/v1/auth/refresh', 'post')).toMatchObject({ required: expect.arrayContaining(['accessToken', 'refreshToken']) });
    expect(schemaOf('/api/v1/me/encryption-vault/key', 'get')).toHaveProperty('anyOf');
  });
});

describe('/docs', () => {
  test('is self-hosted under a strict CSP: scripts only from the gateway, no CDN', async () => {
    const res = await fetch(`${stack.gatewayUrl}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/script-src[^;]*(unsafe|https?:)/);
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    const script = await fetch(`${stack.gatewayUrl}/docs/redoc.standalone.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });

  test.skipIf(!existsSync('/usr/bin/chromium'))(
    'renders in a browser with no CSP violation and no request leaving the gateway',
    async () => {
      const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
      try {
        const page = await browser.newPage();
        const violations: string[] = [];
        const leaked: string[] = [];
        const foreign = (url: string) => !url.startsWith(stack.gatewayUrl) && !url.startsWith('blob:') && !url.startsWith('data:');
        page.on('console', (m) => {
          if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
        });
        // A request to another host that was not stopped by the CSP (this box has no internet: it fails anyway).
        page.on('requestfinished', (r) => {
          if (foreign(r.url())) leaked.push(r.url());
        });
        page.on('requestfailed', (r) => {
          const why = r.failure()?.errorText ?? '';
          if (foreign(r.url()) && !/BLOCKED_BY_CSP|csp/i.test(why)) leaked.push(`${r.url()} (${why})`);
        });
        await page.goto(`${stack.gatewayUrl}/docs`);
        await page.locator('h1', { hasText: 'Mana Auth API' }).first().waitFor({ timeout: 30_000 });
        await page.locator('h2', { hasText: 'Sign in with email and password' }).first().waitFor({ timeout: 30_000 });
        // Redoc's sidebar footer always tries its logo from cdn.redoc.ly: the CSP blocks it (no request leaves,
        // asserted below) and Redoc hides the image. Any other violation is a regression.
        expect(violations.filter((v) => !v.includes('https://cdn.redoc.ly/redoc/logo-mini.svg'))).toEqual([]);
        expect(leaked).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
