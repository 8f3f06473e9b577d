import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceHandle } from '@mana/shared';
import { eventually, startTestIssuer, type TestIssuer } from '@mana/shared/testing';
import { PUBLIC_V1_AUTH_PATHS } from '../src/routes';
import { SERVICE_KEY, cleanup, json, newContext, startStub, startTestGateway, type Stub, type TestContext } from './helpers';

let issuer: TestIssuer;
let ctx: TestContext;
let gw: ServiceHandle;
const stubs: Record<string, Stub> = {};
let userToken: string;
let adminToken: string;
const ORIGIN = 'https://app.example.com';

beforeAll(async () => {
  issuer = await startTestIssuer();
  ctx = newContext(issuer);
  for (const name of ['auth', 'vault', 'gdpr', 'admin', 'credits']) {
    stubs[name] = await startStub(name, name === 'credits' ? corsLeakingStub : undefined);
  }
  gw = await startTestGateway(ctx, {
    AUTH_SVC_URL: stubs.auth.url,
    VAULT_SVC_URL: stubs.vault.url,
    GDPR_SVC_URL: stubs.gdpr.url,
    ADMIN_SVC_URL: stubs.admin.url,
    CREDITS_SVC_URL: stubs.credits.url,
    CORS_ORIGINS: `${ORIGIN}, https://other.example.com`,
    BODY_LIMIT: '1kb',
  });
  userToken = await issuer.sign();
  adminToken = await issuer.sign({ role: 'admin', sub: 'admin-1' });
});

afterAll(async () => {
  await gw?.close();
  await Promise.all(Object.values(stubs).map((s) => s.close()));
  await issuer?.close();
  if (ctx) await cleanup(ctx);
});

/** An upstream that sets its own CORS header: the gateway must not pass it on. */
function corsLeakingStub(...[, res, rec]: Parameters<NonNullable<Parameters<typeof startStub>[1]>>): void {
  res.setHeader('access-control-allow-origin', '*');
  res.setHeader('vary', 'Accept-Encoding');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ service: 'credits', method: rec.method, url: rec.url, bodyBytes: rec.bodyBytes }));
}

const get = (path: string, headers: Record<string, string> = {}) => fetch(gw.url + path, { headers });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('route table', () => {
  const cases: Array<[string, string, 'public' | 'bearer' | 'admin' | 'service']> = [
    ['/api/auth/session', 'auth', 'public'],
    ['/api/auth/sign-in/email', 'auth', 'public'],
    ['/.well-known/openid-configuration', 'auth', 'public'],
    ['/.well-known/jwks.json', 'auth', 'public'],
    ['/auth/login', 'auth', 'public'],
    ['/auth/login/2fa', 'auth', 'public'],
    ['/auth/sign-up', 'auth', 'public'],
    ['/auth/forgot-password', 'auth', 'public'],
    ['/auth/reset-password', 'auth', 'public'],
    ...PUBLIC_V1_AUTH_PATHS.map((p): [string, string, 'public'] => [p, 'auth', 'public']),
    ['/api/v1/auth/logout', 'auth', 'bearer'],
    ['/api/v1/auth/sessions/abc', 'auth', 'bearer'],
    ['/api/v1/me/encryption-vault/key', 'vault', 'bearer'],
    ['/api/v1/me/encryption-vault', 'vault', 'bearer'],
    ['/api/v1/me/data', 'gdpr', 'bearer'],
    ['/api/v1/me', 'gdpr', 'bearer'],
    ['/api/v1/gdpr/jwks.json', 'gdpr', 'public'],
    ['/api/v1/gdpr/erasures/0b7c4ed2-4a4e-4d55-9a43-1bb1a2d0e8a1', 'gdpr', 'public'],
    ['/api/v1/credits/balance', 'credits', 'bearer'],
    ['/api/v1/credits/webhook', 'credits', 'public'],
    ['/api/v1/credits/webhook/stripe', 'credits', 'public'],
    ['/api/v1/admin/users', 'admin', 'admin'],
    ['/api/v1/internal/vault/users/u1', 'vault', 'service'],
    ['/api/v1/internal/credits/users/u1', 'credits', 'service'],
    ['/api/v1/internal/gdpr/x', 'gdpr', 'service'],
    ['/api/v1/internal/admin/x', 'admin', 'service'],
    ['/api/v1/internal/sessions/revoked', 'auth', 'service'],
    ['/api/v1/internal/users/u1/data', 'auth', 'service'],
  ];

  it.each(cases)('%s → %s (%s)', async (path, upstream, access) => {
    const headers: Record<string, string> =
      access === 'service'
        ? { 'x-service-key': SERVICE_KEY }
        : access === 'admin'
          ? bearer(adminToken)
          : access === 'bearer'
            ? bearer(userToken)
            : {};
    const res = await get(`${path}?q=1`, headers);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ service: upstream, url: `${path}?q=1` });
    if (access !== 'public') {
      // Without credentials the same path is refused before it reaches the service.
      const before = stubs[upstream].requests.length;
      const refused = await get(path);
      expect(refused.status).toBe(401);
      expect((await json(refused)).error).toBe(access === 'service' ? 'SERVICE_KEY_MISSING' : 'TOKEN_MISSING');
      expect(stubs[upstream].requests.length).toBe(before);
    }
  });

  it('answers unknown paths with a JSON 404 and never proxies look-alike prefixes', async () => {
    for (const path of [
      '/',
      '/api',
      '/api/v1',
      '/api/v1/meow',
      '/api/authx',
      '/api/v1/adminx',
      '/api/v1/gdprx',
      '/API/V1/ADMIN/users',
      '/nope',
    ]) {
      const res = await get(path, bearer(adminToken));
      expect(res.status, path).toBe(404);
      expect((await json(res)).error).toBe('NOT_FOUND');
    }
  });

  it('refuses non-canonical paths instead of guessing how an upstream resolves them', async () => {
    const paths = [
      '/api/v1/credits/webhook/../../admin/users',
      '/api/v1/credits/webhook/..%2f..%2fadmin',
      '/api/auth/%2e%2e/v1/admin',
      '/api/auth/./x',
      '/api/v1/me//data',
      '/api/auth/a%5cb',
      '/api/auth/a\\b',
    ];
    for (const path of paths) {
      const res = await raw('GET', path);
      expect(res.status, path).toBe(400);
      expect((JSON.parse(res.body) as { error: string }).error).toBe('BAD_PATH');
    }
  });

  it('forwards the Authorization header unchanged and the query string intact', async () => {
    await get('/api/v1/me/data?a=1&b=two', bearer(userToken));
    const rec = stubs.gdpr.requests.at(-1)!;
    expect(rec.headers.authorization).toBe(`Bearer ${userToken}`);
    expect(rec.url).toBe('/api/v1/me/data?a=1&b=two');
  });
});

describe('admin and internal guards', () => {
  it('refuses a non-admin on the admin prefix with 403 FORBIDDEN', async () => {
    const before = stubs.admin.requests.length;
    const res = await get('/api/v1/admin/users', bearer(userToken));
    expect(res.status).toBe(403);
    expect((await json(res)).error).toBe('FORBIDDEN');
    expect(stubs.admin.requests.length).toBe(before);
  });

  it('checks X-Service-Key on internal routes: missing 401, wrong 403, right 200', async () => {
    const missing = await get('/api/v1/internal/vault/users/u1');
    expect(missing.status).toBe(401);
    expect((await json(missing)).error).toBe('SERVICE_KEY_MISSING');
    for (const wrong of ['nope', SERVICE_KEY.slice(0, -1), `${SERVICE_KEY}x`]) {
      const res = await get('/api/v1/internal/vault/users/u1', { 'x-service-key': wrong });
      expect(res.status).toBe(403);
      expect((await json(res)).error).toBe('SERVICE_KEY_INVALID');
    }
    // A user's JWT is not a service key.
    const jwt = await get('/api/v1/internal/vault/users/u1', bearer(adminToken));
    expect(jwt.status).toBe(401);
    const right = await get('/api/v1/internal/vault/users/u1', { 'x-service-key': SERVICE_KEY });
    expect(right.status).toBe(200);
    expect(stubs.vault.requests.at(-1)!.headers['x-service-key']).toBe(SERVICE_KEY);
  });
});

describe('forwarded headers', () => {
  it('echoes a well-formed request id, forwards it, and makes one up otherwise', async () => {
    const res = await get('/api/auth/session', { 'x-request-id': 'req-abc.123' });
    expect(res.headers.get('x-request-id')).toBe('req-abc.123');
    expect(stubs.auth.requests.at(-1)!.headers['x-request-id']).toBe('req-abc.123');

    const made = await get('/api/auth/session', { 'x-request-id': 'bad id with spaces' });
    const id = made.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(stubs.auth.requests.at(-1)!.headers['x-request-id']).toBe(id);

    const err = await get('/nope', { 'x-request-id': 'req-404' });
    expect((await json(err)).requestId).toBe('req-404');
  });

  it('sets X-Forwarded-For/Proto/Host and strips hop-by-hop headers', async () => {
    await raw('GET', '/api/auth/session', {
      connection: 'keep-alive, x-private',
      'x-private': 'secret',
      'proxy-authorization': 'Basic eA==',
      te: 'trailers',
    });
    const h = stubs.auth.requests.at(-1)!.headers;
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-host']).toBe(new URL(gw.url).host);
    expect(h['x-private']).toBeUndefined();
    expect(h['proxy-authorization']).toBeUndefined();
    expect(h.te).toBeUndefined();
  });

  it('keeps the forwarded chain of a trusted (loopback) proxy in front', async () => {
    await get('/api/auth/session', {
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'auth.example.com',
    });
    const h = stubs.auth.requests.at(-1)!.headers;
    expect(h['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h['x-forwarded-host']).toBe('auth.example.com');
  });
});

describe('security headers and CORS', () => {
  it('sets helmet headers on the gateway answers', async () => {
    const res = await get('/nope');
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=31536000/);
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it("sets them on the gateway's own refusals of proxied routes too (401, 404), with the request id", async () => {
    for (const res of [
      await get('/api/v1/me/data', { 'x-request-id': 'r-refused' }),
      await get('/api/v1/nope', { 'x-request-id': 'r-refused' }),
    ]) {
      expect([401, 404]).toContain(res.status);
      expect(res.headers.get('x-request-id')).toBe('r-refused');
      expect(res.headers.get('strict-transport-security')).toMatch(/max-age=31536000/);
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('vary')).toBe('Origin');
      expect(((await res.json()) as { requestId: string }).requestId).toBe('r-refused');
    }
  });

  it('answers a preflight from an allowed origin with 204 and the allowed methods and headers', async () => {
    const before = stubs.credits.requests.length;
    const res = await fetch(`${gw.url}/api/v1/credits/balance`, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization, content-type');
    expect(res.headers.get('vary')).toContain('Origin');
    expect(stubs.credits.requests.length).toBe(before);
  });

  it('gives unknown origins no CORS headers, and replaces what an upstream set', async () => {
    const pre = await fetch(`${gw.url}/api/v1/credits/balance`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' },
    });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();

    const evil = await get('/api/v1/credits/balance', { origin: 'https://evil.example.com', ...bearer(userToken) });
    expect(evil.status).toBe(200);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();

    const good = await get('/api/v1/credits/balance', { origin: ORIGIN, ...bearer(userToken) });
    expect(good.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(good.headers.get('vary')).toBe('Origin, Accept-Encoding');
  });
});

describe('body limit', () => {
  it('refuses a declared body over the limit with 413 JSON before the upstream sees it', async () => {
    const before = stubs.auth.requests.length;
    const res = await fetch(`${gw.url}/api/auth/sign-up/email`, {
      method: 'POST',
      body: 'x'.repeat(2048),
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(413);
    expect((await json(res)).error).toBe('PAYLOAD_TOO_LARGE');
    expect(stubs.auth.requests.length).toBe(before);
  });

  it('counts a streamed (chunked) body and stops it at the limit', async () => {
    const big = await chunkedPost('/api/auth/sign-up/email', 8, 512);
    expect(big.status).toBe(413);
    expect((JSON.parse(big.body) as { error: string }).error).toBe('PAYLOAD_TOO_LARGE');

    const small = await chunkedPost('/api/auth/sign-up/email', 2, 400);
    expect(small.status).toBe(200);
    expect((JSON.parse(small.body) as { bodyBytes: number }).bodyBytes).toBe(800);
  });

  it('streams a body under the limit through', async () => {
    const res = await fetch(`${gw.url}/api/auth/sign-up/email`, {
      method: 'POST',
      body: 'y'.repeat(1000),
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(200);
    expect((await json(res)).bodyBytes).toBe(1000);
  });
});

/** node:http keeps the path exactly as written (fetch would normalise dot segments) and any header. */
function raw(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function chunkedPost(path: string, chunks: number, size: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'text/plain' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    let sent = 0;
    const next = () => {
      if (sent === chunks) {
        req.end();
        return;
      }
      sent++;
      req.write('z'.repeat(size), () => setImmediate(next));
    };
    next();
  });
}

describe('own endpoints', () => {
  it('serves /healthz and /readyz (bus, rate-limit store, revocation list loaded)', async () => {
    expect((await get('/healthz')).status).toBe(200);
    await eventually(async () => (await get('/readyz')).status === 200, 5_000);
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(await json(ready)).toEqual({ status: 'ready', checks: { bus: 'ok', rateLimitStore: 'ok', revocations: 'ok' } });
  });

  it('exposes Prometheus metrics by route and status, latency, and JWT failures', async () => {
    await get('/api/v1/me/data', bearer('not-a-jwt'));
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/gateway_requests_total\{route="me",status="200"\} \d+/);
    expect(text).toMatch(/gateway_requests_total\{route="me",status="401"\} \d+/);
    expect(text).toMatch(/gateway_requests_total\{route="unmatched",status="404"\} \d+/);
    expect(text).toMatch(/gateway_request_duration_seconds_bucket\{le="0.005",route="me"\} \d+/);
    // The histogram is whole: cumulative buckets ending at +Inf = _count = every answer of the route counted.
    const value = (line: RegExp) => Number(line.exec(text)?.[1] ?? NaN);
    const buckets = [...text.matchAll(/gateway_request_duration_seconds_bucket\{le="([^"]+)",route="me"\} (\d+)/g)];
    expect(buckets.map((b) => b[1])).toEqual([
      '0.001',
      '0.0025',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '10',
      '+Inf',
    ]);
    const counts = buckets.map((b) => Number(b[2]));
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    const answered = [...text.matchAll(/gateway_requests_total\{route="me",status="\d+"\} (\d+)/g)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
    expect(counts.at(-1)).toBe(answered);
    expect(value(/gateway_request_duration_seconds_count\{route="me"\} (\d+)/)).toBe(answered);
    expect(value(/gateway_request_duration_seconds_sum\{route="me"\} ([\d.e-]+)/)).toBeGreaterThan(0);
    expect(text).toMatch(/# TYPE gateway_request_duration_seconds histogram/);
    expect(text).toMatch(/# TYPE gateway_requests_total counter/);
    expect(text).toMatch(/gateway_jwt_failures_total\{reason="invalid"\} [1-9]/);
    expect(text).toMatch(/gateway_jwt_failures_total\{reason="missing"\} [1-9]/);
  });
});
