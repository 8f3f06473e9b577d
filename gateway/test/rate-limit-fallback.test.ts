import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceHandle } from '@mana/shared';
import { TEST_REDIS_URL, eventually, startTcpProxy, startTestIssuer, type TcpProxy, type TestIssuer } from '@mana/shared/testing';
import { cleanup, json, newContext, startStub, startTestGateway, type Stub, type TestContext } from './helpers';

let issuer: TestIssuer;
let ctx: TestContext;
let auth: Stub;
let redis: TcpProxy;
let gw: ServiceHandle;

beforeAll(async () => {
  issuer = await startTestIssuer();
  ctx = newContext(issuer);
  auth = await startStub('auth');
  const target = new URL(TEST_REDIS_URL);
  redis = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
  gw = await startTestGateway(ctx, { AUTH_SVC_URL: auth.url, REDIS_URL: redis.urlFor(TEST_REDIS_URL), RATE_LIMIT_AUTH_POINTS: '3' });
});

afterAll(async () => {
  await gw?.close();
  await redis?.close();
  await auth?.close();
  await issuer?.close();
  if (ctx) await cleanup(ctx);
});

const signIn = (ip: string) =>
  fetch(`${gw.url}/api/auth/sign-in/email`, {
    method: 'POST',
    body: '{}',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
  });
const readyz = async () => {
  const res = await fetch(`${gw.url}/readyz`);
  return { status: res.status, checks: (await json(res)).checks as Record<string, string> };
};
const metric = async (name: string) => {
  const line = (await (await fetch(`${gw.url}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
};

describe('rate limits while Redis is down (fail open to a local limiter)', () => {
  it('keeps limiting in memory, stays ready with rateLimitStore degraded, and reports it in /metrics', async () => {
    await eventually(async () => (await readyz()).status === 200, 5_000);
    expect((await readyz()).checks.rateLimitStore).toBe('ok');
    expect(await metric('gateway_rate_limit_store_up')).toBe(1);
    expect(await metric('gateway_rate_limit_fallback_total')).toBe(0);

    redis.cut();
    try {
      await eventually(async () => (await readyz()).checks.rateLimitStore === 'degraded', 5_000);
      expect((await readyz()).status).toBe(200);
      expect(await metric('gateway_rate_limit_store_up')).toBe(0);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await signIn('192.0.2.40')).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(await metric('gateway_rate_limit_fallback_total')).toBeGreaterThan(0);
    } finally {
      redis.restore();
    }
    await eventually(async () => (await readyz()).checks.rateLimitStore === 'ok', 15_000, 100);
    expect(await metric('gateway_rate_limit_store_up')).toBe(1);
    // Back on Redis: a new client starts with a full bucket there.
    expect((await signIn('192.0.2.41')).status).toBe(200);
  });
});
