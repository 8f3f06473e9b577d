import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testBusEnv, type TestDatabase } from '@mana/shared/testing';
import type { ServiceHandle } from '@mana/shared';
import { startCreditsService } from '../../credits-svc/src/server';

describe('service skeleton boots against real PostgreSQL and RabbitMQ', () => {
  let db: TestDatabase;
  let svc: ServiceHandle;
  beforeAll(async () => {
    db = await createTestDatabase();
    svc = await startCreditsService({ env: { DATABASE_URL: db.url, ...testBusEnv(), CREDITS_SVC_PORT: '0', LOG_LEVEL: 'silent' } });
  });
  afterAll(async () => {
    await svc?.close();
    await db?.drop();
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${svc.url}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', bus: 'ok' } });
  });

  it('echoes a request id and answers unknown routes with a JSON 404', async () => {
    const res = await fetch(`${svc.url}/nope`, { headers: { 'x-request-id': 'abc-123' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBe('abc-123');
    expect(await res.json()).toMatchObject({ error: 'NOT_FOUND', requestId: 'abc-123' });
  });
});
