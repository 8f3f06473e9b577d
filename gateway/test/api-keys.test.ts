import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKeyScope, ServiceHandle } from '@mana/shared';
import { eventually, startTestIssuer, type TestIssuer } from '@mana/shared/testing';
import { assertScope } from '../src/api-key-scopes';
import {
  SERVICE_KEY,
  cleanup,
  closedUrl,
  json,
  newContext,
  publishRevocation,
  startStub,
  startTestGateway,
  type Stub,
  type TestContext,
} from './helpers';

let issuer: TestIssuer;
let ctx: TestContext;
let authUrl: string;
let closeAuth: (() => Promise<void>) | undefined;
let gdpr: Stub;
let gateway: ServiceHandle;
const started: ServiceHandle[] = [];

/** The keys auth-svc's stand-in knows: key → id and scopes; a key missing here is refused like a deleted one. */
const known = new Map<string, { id: string; scopes: ApiKeyScope[] }>();
const exchanges: Array<{ key: string; ipAddress?: string; serviceKey: unknown }> = [];
const newKey = (id: string, scopes: ApiKeyScope[] = ['me:read']) => {
  const key = `mana_${randomBytes(32).toString('base64url')}`;
  known.set(key, { id, scopes });
  return key;
};
const exchangesOf = (key: string) => exchanges.filter((e) => e.key === key).length;

beforeAll(async () => {
  issuer = await startTestIssuer();
  ctx = newContext(issuer);
  gdpr = await startStub('gdpr');
  // auth-svc's internal API: the revocation list and the key exchange (as auth-svc answers it). Its own
  // server, not startStub, which consumes request bodies before its handler runs.
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      void (async () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/api/v1/internal/sessions/revoked') {
          res.end('{"revocations":[]}');
          return;
        }
        const asked = JSON.parse(body || '{}') as { key: string; ipAddress?: string };
        exchanges.push({ key: asked.key, ipAddress: asked.ipAddress, serviceKey: req.headers['x-service-key'] });
        const found = known.get(asked.key);
        if (!found || req.headers['x-service-key'] !== SERVICE_KEY) {
          res.statusCode = 401;
          res.end('{"error":"TOKEN_INVALID"}');
          return;
        }
        const sessionId = `ak_${found.id}`;
        const accessToken = await issuer.sign({ sid: sessionId }, { expiresIn: '5m' });
        const expiresAt = new Date(Date.now() + 5 * 60_000).toISOString();
        res.end(JSON.stringify({ accessToken, expiresAt, keyId: found.id, sessionId, scopes: found.scopes }));
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  authUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closeAuth = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  gateway = await startTestGateway(ctx, { AUTH_SVC_URL: authUrl, GDPR_SVC_URL: gdpr.url, RATE_LIMIT_API_KEY_POINTS: '5' });
  started.push(gateway);
});

afterAll(async () => {
  await Promise.all(started.map((g) => g.close()));
  await gdpr?.close();
  await closeAuth?.();
  await issuer?.close();
  if (ctx) await cleanup(ctx);
});

const get = (path: string, headers: Record<string, string>, base = gateway.url) => fetch(`${base}${path}`, { headers });

describe('gateway: personal API keys', () => {
  it('exchanges a key once, forwards only the access token, and exchanges again for a new client IP', async () => {
    const key = newKey('k-once');
    const variants: Array<Record<string, string>> = [
      { authorization: `Bearer ${key}` },
      { 'x-api-key': key },
      { authorization: `bearer ${key}` },
    ];
    for (const headers of variants) {
      const res = await get('/api/v1/me/data', headers);
      expect(res.status).toBe(200);
    }
    expect(exchangesOf(key)).toBe(1);
    expect(exchanges.find((e) => e.key === key)).toMatchObject({ serviceKey: SERVICE_KEY, ipAddress: '127.0.0.1' });
    const seen = gdpr.requests.slice(-3);
    for (const r of seen) {
      expect(r.headers.authorization).toMatch(/^Bearer eyJ/);
      expect(r.headers['x-api-key']).toBeUndefined();
      expect(JSON.stringify(r.headers)).not.toContain(key);
    }

    const res = await get('/api/v1/me/data', { 'x-api-key': key, 'x-forwarded-for': '203.0.113.5' });
    expect(res.status).toBe(200);
    expect(exchanges.filter((e) => e.key === key).map((e) => e.ipAddress)).toEqual(['127.0.0.1', '203.0.113.5']);
  });

  it('never forwards a key to a route that does not take one (public routes): no X-API-Key, no Bearer mana_…', async () => {
    const key = newKey('k-public');
    const variants: Array<Record<string, string>> = [{ 'x-api-key': key }, { authorization: `Bearer ${key}` }];
    for (const headers of variants) {
      const before = gdpr.requests.length;
      const res = await get('/api/v1/gdpr/erasures/status', headers);
      expect(res.status).toBe(200);
      const seen = gdpr.requests.slice(before);
      expect(seen.map((r) => r.url)).toEqual(['/api/v1/gdpr/erasures/status']);
      expect(JSON.stringify(seen[0]?.headers)).not.toContain(key);
    }
    // A JWT on a public route still goes through untouched.
    const jwt = await issuer.sign({}, { expiresIn: '5m' });
    const before = gdpr.requests.length;
    expect((await get('/api/v1/gdpr/erasures/status', { authorization: `Bearer ${jwt}` })).status).toBe(200);
    expect(gdpr.requests[before]?.headers.authorization).toBe(`Bearer ${jwt}`);
  });

  it('refuses a wrong or malformed key with 401 TOKEN_INVALID (a malformed one without asking auth-svc)', async () => {
    const wrong = `mana_${randomBytes(32).toString('base64url')}`;
    const res = await get('/api/v1/me/data', { authorization: `Bearer ${wrong}` });
    expect(res.status).toBe(401);
    expect(await json(res)).toMatchObject({ error: 'TOKEN_INVALID' });
    const before = exchanges.length;
    const malformed = await get('/api/v1/me/data', { 'x-api-key': 'mana_not-a-key' });
    expect(malformed.status).toBe(401);
    expect(await json(malformed)).toMatchObject({ error: 'TOKEN_INVALID' });
    expect(exchanges.length).toBe(before);
  });

  it('enforces scopes per route and method: 403 SCOPE_DENIED, and never /api/v1/auth', async () => {
    const key = newKey('k-scopes', ['credits:read']);
    const proxied = gdpr.requests.length;
    for (const [path, method] of [
      ['/api/v1/me/data', 'GET'],
      ['/api/v1/auth/sessions', 'GET'],
      ['/api/v1/admin/users', 'GET'],
    ] as const) {
      const res = await fetch(`${gateway.url}${path}`, { method, headers: { 'x-api-key': key } });
      expect(res.status).toBe(403);
      expect(await json(res)).toMatchObject({ error: 'SCOPE_DENIED' });
    }
    expect(gdpr.requests.length).toBe(proxied);
  });

  it('refuses a key whose sid was revoked at once (cached exchange or not) with 401 TOKEN_INVALID', async () => {
    const key = newKey('k-revoked');
    expect((await get('/api/v1/me/data', { authorization: `Bearer ${key}` })).status).toBe(200);
    known.delete(key); // deleted at auth-svc…
    await publishRevocation(ctx, 'ak_k-revoked', new Date(Date.now() + 15 * 60_000)); // …which publishes the revocation
    await eventually(async () => (await get('/api/v1/me/data', { authorization: `Bearer ${key}` })).status === 401, 1_000);
    const res = await get('/api/v1/me/data', { authorization: `Bearer ${key}` });
    expect(await json(res)).toMatchObject({ error: 'TOKEN_INVALID' });
    // The cached exchange was dropped: the key is asked about again (and refused there).
    expect(exchangesOf(key)).toBeGreaterThan(1);
  });

  it('a revocation reaches every gateway instance: two gateways with the exchange cached both refuse the key', async () => {
    const second = await startTestGateway(ctx, { AUTH_SVC_URL: authUrl, GDPR_SVC_URL: gdpr.url });
    started.push(second);
    const key = newKey('k-two-gateways');
    for (const base of [gateway.url, second.url]) expect((await get('/api/v1/me/data', { 'x-api-key': key }, base)).status).toBe(200);
    await publishRevocation(ctx, 'ak_k-two-gateways', new Date(Date.now() + 15 * 60_000)); // auth-svc still answers the exchange
    for (const base of [gateway.url, second.url])
      await eventually(async () => (await get('/api/v1/me/data', { 'x-api-key': key }, base)).status === 401, 1_000);
  });

  it('counts each key against its own limit, not its IP: one key exhausted leaves other keys and JWTs alone', async () => {
    const busy = newKey('k-busy');
    const calm = newKey('k-calm');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await get('/api/v1/me/data', { 'x-api-key': busy })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const limited = await get('/api/v1/me/data', { 'x-api-key': busy });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await json(limited)).toMatchObject({ error: 'RATE_LIMITED' });
    expect((await get('/api/v1/me/data', { 'x-api-key': calm })).status).toBe(200);
    const jwt = await issuer.sign({}, { expiresIn: '5m' });
    expect((await get('/api/v1/me/data', { authorization: `Bearer ${jwt}` })).status).toBe(200);
  });

  it('answers 503 SERVICE_UNAVAILABLE when auth-svc cannot be asked', async () => {
    const lonely = await startTestGateway(ctx, { AUTH_SVC_URL: await closedUrl(), GDPR_SVC_URL: gdpr.url });
    started.push(lonely);
    const res = await get('/api/v1/me/data', { 'x-api-key': newKey('k-unasked') }, lonely.url);
    expect(res.status).toBe(503);
    expect(await json(res)).toMatchObject({ error: 'SERVICE_UNAVAILABLE' });
  });
});

describe('gateway: the API-key scope table', () => {
  const allows = (scopes: ApiKeyScope[], route: string, method: string) => {
    try {
      assertScope(new Set(scopes), route, method);
      return true;
    } catch {
      return false;
    }
  };

  it('`<area>:read` allows GET and HEAD, `<area>` every method; admin only with admin; other routes never', () => {
    expect(allows(['me:read'], 'me', 'GET')).toBe(true);
    expect(allows(['me:read'], 'me', 'HEAD')).toBe(true);
    expect(allows(['me:read'], 'me', 'POST')).toBe(false);
    expect(allows(['me:read'], 'vault', 'GET')).toBe(false);
    expect(allows(['vault:read'], 'vault', 'GET')).toBe(true);
    expect(allows(['vault:read'], 'vault', 'POST')).toBe(false);
    expect(allows(['vault'], 'vault', 'POST')).toBe(true);
    expect(allows(['credits'], 'credits', 'DELETE')).toBe(true);
    expect(allows(['credits:read'], 'credits', 'POST')).toBe(false);
    expect(allows(['me', 'vault', 'credits'], 'admin', 'GET')).toBe(false);
    expect(allows(['admin'], 'admin', 'GET')).toBe(true);
    expect(allows(['admin', 'me', 'vault', 'credits'], 'v1-auth', 'GET')).toBe(false);
  });
});
