import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, deleteTestBus, eventually, testBusEnv, type TestDatabase } from '@mana/shared/testing';
import type { ServiceHandle } from '@mana/shared';
import { startCreditsService } from '../../credits-svc/src/server';

/** A stand-in for auth-svc's internal revocation list that refuses to answer until told to. */
async function startAuthStub(): Promise<{ url: string; calls: () => number; serve: (on: boolean) => void; close: () => Promise<void> }> {
  let serving = false;
  let calls = 0;
  const server: Server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url !== '/api/v1/internal/sessions/revoked') {
      res.statusCode = 404;
      res.end('{}');
      return;
    }
    calls++;
    res.statusCode = serving ? 200 : 503;
    res.end(serving ? '{"revocations":[]}' : '{"error":"SERVICE_UNAVAILABLE"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls: () => calls,
    serve: (on) => (serving = on),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('a service replica fails closed on revocations', () => {
  let db: TestDatabase;
  let auth: Awaited<ReturnType<typeof startAuthStub>>;
  let svc: ServiceHandle;
  const bus = testBusEnv();
  beforeAll(async () => {
    db = await createTestDatabase();
    auth = await startAuthStub();
    svc = await startCreditsService({
      env: { DATABASE_URL: db.url, ...bus, CREDITS_SVC_PORT: '0', LOG_LEVEL: 'silent', AUTH_JWKS_URL: `${auth.url}/api/auth/jwks` },
    });
  });
  afterAll(async () => {
    await svc?.close();
    await auth?.close();
    await deleteTestBus(bus);
    await db?.drop();
  });

  it('answers /readyz 503 until the revocation list was loaded once, then 200 (and keeps it on later failures)', async () => {
    await eventually(() => auth.calls() >= 1, 5_000);
    const before = await fetch(`${svc.url}/readyz`);
    expect(before.status).toBe(503);
    expect(await before.json()).toEqual({ status: 'not_ready', checks: { database: 'ok', bus: 'ok', revocations: 'fail' } });

    auth.serve(true);
    await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 15_000);
    expect(await (await fetch(`${svc.url}/readyz`)).json()).toEqual({
      status: 'ready',
      checks: { database: 'ok', bus: 'ok', revocations: 'ok' },
    });

    auth.serve(false);
    expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
  }, 30_000);
});
