import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { INSTANCES, newUser } from './helpers';

const AUTH_POINTS = 5;

/**
 * Redis, the gateway's rate-limit store, goes away (its connection cut at a TCP proxy, new ones refused).
 * The gateway fails open to a limiter in its own memory: it keeps serving, still refuses a client over the
 * limit, says `degraded` in /readyz (still 200: one Redis must not take every gateway out of the load
 * balancer) and `gateway_rate_limit_store_up 0` in /metrics, and goes back to Redis when it returns.
 */
describe('chaos: Redis (rate-limit store) down', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({
      services: ['credits'],
      instances: INSTANCES,
      proxyRedis: true,
      env: { RATE_LIMIT_AUTH_POINTS: String(AUTH_POINTS) },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  const readyz = () => call<{ status: string; checks: Record<string, string> }>(`${s.gatewayUrl}/readyz`);
  const metric = async (name: string) => {
    const text = await (await fetch(`${s.gatewayUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };
  /** A sign-in attempt from one client IP (the auth bucket), for an address nobody registered. */
  const signInFrom = (ip: string) =>
    call(`${s.gatewayUrl}/api/v1/auth/login`, {
      body: { email: 'nobody@example.com', password: 'wrong password here' },
      headers: { 'x-forwarded-for': ip },
    });

  it('keeps serving with a local limiter, reports it, and returns to Redis', async () => {
    const proxy = s.redisProxy;
    if (!proxy) throw new Error('the stack has no Redis proxy');
    const u = await newUser(s);
    expect((await readyz()).body.checks.rateLimitStore).toBe('ok');
    expect(await metric('gateway_rate_limit_store_up')).toBe(1);

    proxy.cut();
    try {
      await eventually(async () => (await readyz()).body.checks.rateLimitStore === 'degraded', 10_000, 100);
      const ready = await readyz();
      expect(ready.status).toBe(200);
      expect(await metric('gateway_rate_limit_store_up')).toBe(0);

      // Traffic goes on.
      for (let i = 0; i < 10; i++) expect((await call(`${s.gatewayUrl}/api/v1/credits/balance`, { token: u.token })).status).toBe(200);
      // A client over the auth limit is still refused, counted in this instance's memory.
      const statuses: number[] = [];
      for (let i = 0; i < AUTH_POINTS + 1; i++) statuses.push((await signInFrom('203.0.113.77')).status);
      expect(statuses.slice(0, AUTH_POINTS).every((x) => x === 401)).toBe(true);
      expect(statuses[AUTH_POINTS]).toBe(429);
      expect(await metric('gateway_rate_limit_fallback_total')).toBeGreaterThan(0);
    } finally {
      proxy.restore();
    }

    // Redis is back: the shared store counts again (a fresh client starts with a full bucket there).
    await eventually(async () => (await readyz()).body.checks.rateLimitStore === 'ok', 20_000, 200);
    await eventually(async () => (await metric('gateway_rate_limit_store_up')) === 1, 10_000, 200);
    expect((await signInFrom('203.0.113.78')).status).toBe(401);
    expect((await call(`${s.gatewayUrl}/api/v1/credits/balance`, { token: u.token })).status).toBe(200);
  });
});
