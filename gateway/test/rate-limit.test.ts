import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceHandle } from '@mana/shared';
import { createTestDatabase, eventually, startTestIssuer, type TestDatabase, type TestIssuer } from '@mana/shared/testing';
import { cleanup, json, newContext, startStub, startTestGateway, type Stub, type TestContext } from './helpers';

let issuer: TestIssuer;
let ctx: TestContext;
let auth: Stub;
let db: TestDatabase;
const gateways: ServiceHandle[] = [];

const LIMITS = { RATE_LIMIT_AUTH_POINTS: '3', RATE_LIMIT_AUTH_WINDOW_S: '60', RATE_LIMIT_POINTS: '8', RATE_LIMIT_WINDOW_S: '60' };

beforeAll(async () => {
  issuer = await startTestIssuer();
  ctx = newContext(issuer);
  auth = await startStub('auth');
  db = await createTestDatabase('gw_rl');
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await auth?.close();
  await issuer?.close();
  if (ctx) await cleanup(ctx);
  await db?.drop();
});

async function start(extra: Record<string, string>): Promise<[ServiceHandle, ServiceHandle]> {
  const a = await startTestGateway(ctx, { AUTH_SVC_URL: auth.url, ...LIMITS, ...extra });
  const b = await startTestGateway(ctx, { AUTH_SVC_URL: auth.url, ...LIMITS, ...extra });
  gateways.push(a, b);
  return [a, b];
}

const signIn = (gw: ServiceHandle, ip: string) =>
  fetch(`${gw.url}/api/auth/sign-in/email`, {
    method: 'POST',
    body: '{}',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
  });
const session = (gw: ServiceHandle, ip: string) => fetch(`${gw.url}/api/auth/session`, { headers: { 'x-forwarded-for': ip } });

/** Two gateway instances count one client's requests together (a store they share, not memory). */
async function expectSharedCount(a: ServiceHandle, b: ServiceHandle, ip: string): Promise<void> {
  expect((await signIn(a, ip)).status).toBe(200);
  expect((await signIn(b, ip)).status).toBe(200);
  expect((await signIn(a, ip)).status).toBe(200);
  // (The gateway's revocation loader also calls this stub in the background: count sign-ins only.)
  const signIns = () => auth.requests.filter((r) => r.url === '/api/auth/sign-in/email').length;
  const before = signIns();
  const limited = await signIn(b, ip);
  expect(limited.status).toBe(429);
  expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
  expect(await json(limited)).toMatchObject({ error: 'RATE_LIMITED', requestId: limited.headers.get('x-request-id') });
  expect(signIns()).toBe(before);

  // Another client is not affected, and the general bucket is looser than the sign-in one.
  expect((await signIn(a, '198.51.100.99')).status).toBe(200);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await session(i % 2 ? a : b, ip)).status);
  // 4 sign-in attempts + 4 general requests fill the general bucket of 8.
  expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
}

describe('rate limits shared by gateway instances', () => {
  it('counts in Redis across two instances and answers 429 with Retry-After', async () => {
    const [a, b] = await start({});
    await expectSharedCount(a, b, '203.0.113.10');
  });

  it('counts in PostgreSQL when Redis is not configured', async () => {
    const [a, b] = await start({ REDIS_URL: '', GATEWAY_DATABASE_URL: db.url, RATE_LIMIT_PREFIX: `${ctx.redisPrefix}pg` });
    await expectSharedCount(a, b, '203.0.113.20');
    await eventually(async () => (await fetch(`${a.url}/readyz`)).status === 200, 5_000);
    const ready = await json(await fetch(`${a.url}/readyz`));
    expect(ready.checks).toEqual({ bus: 'ok', rateLimitStore: 'ok', revocations: 'ok' });
  });

  it('does not rate-limit the health endpoints', async () => {
    const [a] = gateways;
    for (let i = 0; i < 12; i++) expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
  });

  it('refuses to start in production without a shared store or with verification off', async () => {
    const prod = { NODE_ENV: 'production', MANA_SERVICE_KEY: 'p'.repeat(40), REDIS_URL: '', DATABASE_URL: '' };
    await expect(startTestGateway(ctx, prod)).rejects.toThrow(/REDIS_URL/);
    await expect(startTestGateway(ctx, prod)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(startTestGateway(ctx, { ...prod, REDIS_URL: 'redis://127.0.0.1:6379', GATEWAY_VERIFY_JWT: 'false' })).rejects.toThrow(
      /GATEWAY_VERIFY_JWT/,
    );
  });
});
