import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, deleteRedisKeys, eventually, startTcpProxy, uniqueName, type TcpProxy } from '@mana/shared/testing';
import { createRateLimiter, type RateLimiter } from '../src/rate-limit';
import { SharedCounter, type SharedCounterSettings, type Verdict } from '../src/shared-counter';

const prefix = uniqueName('gw_sc');
const clients: Redis[] = [];
const counters: SharedCounter[] = [];
const limiters: RateLimiter[] = [];
let redisProxy: TcpProxy;

beforeAll(async () => {
  const target = new URL(TEST_REDIS_URL);
  redisProxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
});

afterEach(async () => {
  await Promise.all(counters.splice(0).map((c) => c.close()));
  await Promise.all(limiters.splice(0).map((l) => l.close()));
  for (const c of clients.splice(0)) c.disconnect();
});

afterAll(async () => {
  await redisProxy?.close();
  await deleteRedisKeys(prefix);
});

/** One gateway instance's counter, on its own Redis connection. */
async function instance(settings: Partial<SharedCounterSettings> & { keyPrefix: string }): Promise<SharedCounter> {
  const redis = new Redis(TEST_REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect();
  clients.push(redis);
  const counter = new SharedCounter(redis, { points: 100, windowMs: 60_000, localHits: 0, syncMs: 20, ...settings }, () => undefined);
  counters.push(counter);
  return counter;
}

const allowed = (verdicts: Verdict[]) => verdicts.filter((v) => v === undefined).length;

describe('SharedCounter: one limit for every instance, few round trips', () => {
  it('counts exactly across two instances when the local budget is 0', async () => {
    const keyPrefix = `${prefix}:exact`;
    const [a, b] = [await instance({ keyPrefix, points: 7 }), await instance({ keyPrefix, points: 7 })];
    const verdicts: Verdict[] = [];
    for (let i = 0; i < 10; i++) verdicts.push(await (i % 2 ? a : b).hit('198.51.100.1'));
    expect(verdicts.map((v) => v === undefined)).toEqual([true, true, true, true, true, true, true, false, false, false]);
    const refused = verdicts[9] ?? 0;
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThanOrEqual(60_000);
  });

  it('keeps two instances within the stated error (instances × local hits) over the limit, in order and in bursts', async () => {
    const keyPrefix = `${prefix}:batched`;
    const settings = { keyPrefix, points: 1000, localHits: 10 };
    const [a, b] = [await instance(settings), await instance(settings)];
    // Interleaved one by one: each instance mostly decides alone, Redis hears of it in batches.
    const sequential: Verdict[] = [];
    for (let i = 0; i < 1500; i++) sequential.push(await (i % 3 ? a : b).hit('one-client'));
    expect(allowed(sequential)).toBeGreaterThanOrEqual(1000);
    expect(allowed(sequential)).toBeLessThanOrEqual(1000 + 2 * 10);
    // Concurrent bursts on both instances for another client.
    const burst: Array<Promise<Verdict>> = [];
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 50; i++) burst.push(Promise.resolve(a.hit('other-client')), Promise.resolve(b.hit('other-client')));
      await new Promise((r) => setImmediate(r));
    }
    const verdicts = await Promise.all(burst);
    expect(allowed(verdicts)).toBeGreaterThanOrEqual(1000);
    expect(allowed(verdicts)).toBeLessThanOrEqual(1000 + 2 * 10);
    // Every allowed hit reaches Redis (refused ones only when Redis refused them).
    const redis = clients[0];
    await eventually(async () => Number(await redis.get(`${keyPrefix}:other-client`)) >= allowed(verdicts));
  });

  it('decides most hits without a round trip', async () => {
    const keyPrefix = `${prefix}:local`;
    const a = await instance({ keyPrefix, points: 100_000, localHits: 100, syncMs: 60_000 });
    let waited = 0;
    for (let i = 0; i < 1000; i++) {
      const v = a.hit('busy-client');
      if (v instanceof Promise) {
        waited++;
        await v;
      } else expect(v).toBeUndefined();
      // Let the batches the counter started go out.
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    // The first hit of the window waits for Redis; afterwards batches go out at half the local budget.
    expect(waited).toBeLessThan(50);
  });

  it('opens a new window when the old one ends', async () => {
    const keyPrefix = `${prefix}:window`;
    const a = await instance({ keyPrefix, points: 3, windowMs: 1000 });
    for (let i = 0; i < 3; i++) expect(await a.hit('client')).toBeUndefined();
    const refused = await a.hit('client');
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThanOrEqual(1000);
    // Once Redis lets the key expire, the next hit starts a fresh window with the whole limit.
    await eventually(async () => (await a.hit('client')) === undefined, 5_000, 50);
    expect(await a.hit('client')).toBeUndefined();
    expect(await a.hit('client')).toBeUndefined();
    expect(await a.hit('client')).toBeGreaterThan(0);
  });
});

describe('rate limiter on Redis with a local budget', () => {
  it('falls back to counting in memory while Redis is away, and returns to Redis', async () => {
    let fallbacks = 0;
    const limiter = await createRateLimiter(
      {
        prefix: `${prefix}:fb`,
        general: { points: 100, windowS: 60 },
        auth: { points: 3, windowS: 60 },
        sync: { localShare: 0.1, syncMs: 20 },
      },
      { redisUrl: redisProxy.urlFor(TEST_REDIS_URL), onFallback: () => fallbacks++ },
      pino({ level: 'silent' }),
    );
    limiters.push(limiter);
    for (let i = 0; i < 20; i++) expect(await limiter.check('192.0.2.7', 'general')).toBeUndefined();
    expect(limiter.storeUp()).toBe(true);
    const redis = new Redis(TEST_REDIS_URL);
    clients.push(redis);
    await eventually(async () => Number(await redis.get(`${prefix}:fb:general:192.0.2.7`)) === 20);
    expect(fallbacks).toBe(0);

    redisProxy.cut();
    try {
      await eventually(() => !limiter.storeUp(), 5_000);
      expect(await limiter.ping()).toBe('degraded');
      // The fallback counts this instance's hits from zero, with the same limit.
      const verdicts = [];
      for (let i = 0; i < 101; i++) verdicts.push(await limiter.check('192.0.2.7', 'general'));
      expect(verdicts.slice(0, 100).every((v) => v === undefined)).toBe(true);
      expect(verdicts[100]).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
      expect(fallbacks).toBe(101);
    } finally {
      redisProxy.restore();
    }
    await eventually(() => limiter.storeUp(), 15_000, 100);
    expect(await limiter.ping()).toBeUndefined();
    // Back on Redis, which still holds the 20 hits from before the outage.
    const before = fallbacks;
    const verdicts = [];
    for (let i = 0; i < 81; i++) verdicts.push(await limiter.check('192.0.2.7', 'general'));
    expect(fallbacks).toBe(before);
    expect(verdicts.slice(0, 80).every((v) => v === undefined)).toBe(true);
    expect(verdicts[80]).toMatchObject({ code: 'RATE_LIMITED' });
  });
});
