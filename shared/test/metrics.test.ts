import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { MetricSignal, createEvent, type AmqpBus, type ServiceHandle } from '@mana/shared';
import { createTestDatabase, deleteTestBus, eventually, testBusEnv, testPool, type TestDatabase } from '@mana/shared/testing';
import { startCreditsService } from '../../credits-svc/src/server';
import { loadGatewayConfig } from '../../gateway/src/config';
import { makeBus, withChannel } from './helpers/bus';

const TOKEN = 'metrics-test-token-0123456789';
const SERVICE_KEY = 'metrics-test-service-key-0123456789abcdef';

/** One sample's value from a Prometheus text exposition, by metric name and (a subset of) its labels. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const wanted = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (wanted) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('every service serves /metrics from the shared runtime (credits-svc as the example)', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let svc: ServiceHandle;
  let publisher: AmqpBus;
  const bus = testBusEnv();
  const scrape = async () => {
    const res = await fetch(`${svc.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    return res.text();
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = testPool(db.url, 2);
    svc = await startCreditsService({
      env: {
        DATABASE_URL: db.url,
        ...bus,
        CREDITS_SVC_PORT: '0',
        LOG_LEVEL: 'silent',
        METRICS_TOKEN: TOKEN,
        MANA_SERVICE_KEY: SERVICE_KEY,
      },
    });
    publisher = makeBus(bus);
    await publisher.start();
  });

  afterAll(async () => {
    await publisher?.close();
    await svc?.close();
    await deleteTestBus(bus, ['credits', 'credits.user-registered']);
    await sql?.end();
    await db?.drop();
  });

  it('refuses a scrape without the token or with a wrong one (401 TOKEN_INVALID)', async () => {
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: TOKEN }];
    for (const headers of attempts) {
      const res = await fetch(`${svc.url}/metrics`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'TOKEN_INVALID' });
    }
  });

  it('counts requests by route template (never the raw path), with a latency histogram', async () => {
    const id = randomUUID();
    const ok = await fetch(`${svc.url}/api/v1/internal/credits/users/${id}/data`, { headers: { 'x-service-key': SERVICE_KEY } });
    expect(ok.status).toBe(200);
    // An error thrown inside the router still carries the router's prefix.
    const bad = await fetch(`${svc.url}/api/v1/internal/credits/users/${'x'.repeat(200)}/data`, {
      headers: { 'x-service-key': SERVICE_KEY },
    });
    expect(bad.status).toBe(400);
    // Refused by the prefix's middleware before any route: labelled by the prefix.
    expect((await fetch(`${svc.url}/api/v1/credits/balance`)).status).toBe(401);
    expect((await fetch(`${svc.url}/no/such/${id}`)).status).toBe(404);

    const text = await scrape();
    const route = '/api/v1/internal/credits/users/:id/data';
    expect(sample(text, 'mana_http_requests_total', { service: 'credits-svc', route, method: 'GET', status: '200' })).toBe(1);
    expect(sample(text, 'mana_http_requests_total', { route, status: '400' })).toBe(1);
    expect(sample(text, 'mana_http_requests_total', { route: '/api/v1/credits/*', status: '401' })).toBe(1);
    expect(sample(text, 'mana_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1);
    expect(sample(text, 'mana_http_request_duration_seconds_count', { route, method: 'GET' })).toBe(2);
    expect(text).not.toContain(id);
    // Probes and the scrape itself are not counted.
    expect(text).not.toMatch(/route="\/(metrics|healthz|readyz)"/);
  });

  it('reports the database pool, and the outbox backlog with the age of its oldest row', async () => {
    // An event the relay cannot publish (its envelope is invalid) stays in the outbox: what the alert is for.
    await sql.query(
      `insert into credits.outbox (id, type, envelope, created_at) values ($1, 'user.tier.changed.v1', '{}'::jsonb, now() - interval '120 seconds')`,
      [randomUUID()],
    );
    const text = await scrape();
    expect(sample(text, 'mana_db_pool_connections', { state: 'total' })).toBeGreaterThan(0);
    expect(sample(text, 'mana_db_pool_connections', { state: 'waiting' })).toBe(0);
    expect(sample(text, 'mana_outbox_pending_events')).toBe(1);
    expect(sample(text, 'mana_outbox_oldest_pending_age_seconds')).toBeGreaterThanOrEqual(120);
    await sql.query('delete from credits.outbox');
    expect(sample(await scrape(), 'mana_outbox_oldest_pending_age_seconds')).toBe(0);
  });

  it('counts consumed and dead-lettered events by type, and reads queue depths from the broker', async () => {
    const userId = randomUUID();
    await publisher.publish(createEvent('user.registered.v1', { userId, email: `${userId}@example.test`, name: 'M', locale: 'en' }));
    await eventually(async () =>
      sample(await scrape(), 'mana_bus_consumed_total', { queue: 'credits.user-registered', type: 'user.registered.v1' }),
    );
    // Bytes that are no event at all go straight to the dead-letter queue.
    await withChannel(async (ch) => {
      ch.publish(bus.AMQP_EXCHANGE, 'user.registered.v1', Buffer.from('not json'), { persistent: true });
    });
    const text = await eventually(async () => {
      const t = await scrape();
      return sample(t, 'mana_bus_dead_letter_messages', { queue: 'credits.user-registered' }) === 1 ? t : undefined;
    });
    expect(sample(text, 'mana_bus_dead_lettered_total', { queue: 'credits.user-registered', reason: 'malformed' })).toBe(1);
    expect(sample(text, 'mana_bus_queue_messages', { queue: 'credits.user-registered' })).toBe(0);
    expect(sample(text, 'mana_bus_queue_messages', { queue: 'credits' })).toBe(0);
    // The signup bonus it granted is a business counter of credits-svc.
    expect(sample(text, 'credits_granted_total', { category: 'promo' })).toBeGreaterThan(0);
  });
});

describe('MetricSignal', () => {
  it('counts each event once per process: the first subscriber gets it, the next takes over when it leaves', () => {
    const signal = new MetricSignal<[n: number]>();
    signal.emit(0); // nobody listens: nothing happens
    const first: number[] = [];
    const second: number[] = [];
    const leaveFirst = signal.subscribe((n) => first.push(n));
    const leaveSecond = signal.subscribe((n) => second.push(n));
    signal.emit(1);
    leaveFirst();
    signal.emit(2);
    leaveSecond();
    signal.emit(3);
    expect(first).toEqual([1]);
    expect(second).toEqual([2]);
  });
});

describe('METRICS_TOKEN in production', () => {
  it('a service refuses to start without it, naming the variable', async () => {
    const prod = { NODE_ENV: 'production', MANA_SERVICE_KEY: 'p'.repeat(40), AMQP_URL: 'amqp://127.0.0.1:1', LOG_LEVEL: 'silent' };
    await expect(startCreditsService({ env: prod })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      problems: expect.arrayContaining(['METRICS_TOKEN: required in production']),
    });
  });

  it('so does the gateway', () => {
    const prod = { NODE_ENV: 'production', MANA_SERVICE_KEY: 'p'.repeat(40), AMQP_URL: 'amqp://x', REDIS_URL: 'redis://127.0.0.1:6379' };
    expect(() => loadGatewayConfig(prod)).toThrow(/METRICS_TOKEN: required in production/);
    expect(loadGatewayConfig({ ...prod, METRICS_TOKEN: 'm'.repeat(24) }).METRICS_TOKEN).toBe('m'.repeat(24));
  });
});
