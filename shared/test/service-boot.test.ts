import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, deleteTestBus, eventually, testBusEnv, type TestDatabase } from '@mana/shared/testing';
import type { ServiceHandle } from '@mana/shared';
import { startCreditsService } from '../../credits-svc/src/server';

describe('service skeleton boots against real PostgreSQL and RabbitMQ', () => {
  let db: TestDatabase;
  let svc: ServiceHandle;
  const bus = testBusEnv();
  beforeAll(async () => {
    db = await createTestDatabase();
    svc = await startCreditsService({ env: { DATABASE_URL: db.url, ...bus, CREDITS_SVC_PORT: '0', LOG_LEVEL: 'silent' } });
  });
  afterAll(async () => {
    await svc?.close();
    await deleteTestBus(bus);
    await db?.drop();
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${svc.url}/readyz`);
    // The revocation check depends on an auth-svc this test does not start (see revocation-readiness.test.ts).
    expect(await ready.json()).toMatchObject({ checks: { database: 'ok', bus: 'ok' } });
  });

  it('echoes a request id and answers unknown routes with a JSON 404', async () => {
    const res = await fetch(`${svc.url}/nope`, { headers: { 'x-request-id': 'abc-123' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBe('abc-123');
    expect(await res.json()).toMatchObject({ error: 'NOT_FOUND', requestId: 'abc-123' });
  });

  it('guards its protected prefix with the shared JWT middleware even when reached directly', async () => {
    const missing = await fetch(`${svc.url}/api/v1/credits/balance`);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ error: 'TOKEN_MISSING' });
    const garbage = await fetch(`${svc.url}/api/v1/credits/balance`, { headers: { authorization: 'Bearer not.a.jwt' } });
    expect(garbage.status).toBe(401);
    expect(await garbage.json()).toMatchObject({ error: 'TOKEN_INVALID' });
  });
});

describe('a service whose port is taken', () => {
  it('fails to start and releases its database connections', async () => {
    const db = await createTestDatabase();
    const first = await startCreditsService({ env: { DATABASE_URL: db.url, CREDITS_SVC_PORT: '0', LOG_LEVEL: 'silent' } });
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const connections = async () =>
      (
        await admin.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'credits-svc'",
        )
      ).rows[0]?.n ?? 0;
    try {
      const before = await connections();
      await expect(
        startCreditsService({ env: { DATABASE_URL: db.url, CREDITS_SVC_PORT: String(first.port), LOG_LEVEL: 'silent' } }),
      ).rejects.toMatchObject({ code: 'EADDRINUSE' });
      // the failed instance ran its migrations (so it had connections) and closed its pool again
      await eventually(async () => (await connections()) <= before);
    } finally {
      await admin.end();
      await first.close();
      await db.drop();
    }
  });
});
