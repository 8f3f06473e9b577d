import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceHandle } from '@mana/shared';
import { eventually, startTestIssuer, type TestIssuer } from '@mana/shared/testing';
import { RevokedSessions } from '@mana/shared';
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
let auth: Stub;
let gdpr: Stub;
const gateways: ServiceHandle[] = [];
const inTenMinutes = () => new Date(Date.now() + 10 * 60_000).toISOString();

beforeAll(async () => {
  issuer = await startTestIssuer();
  ctx = newContext(issuer);
  gdpr = await startStub('gdpr');
  // auth-svc's internal list of revocations still in force (only for the right service key).
  auth = await startStub('auth', (req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url !== '/api/v1/internal/sessions/revoked') {
      res.end('{}');
      return;
    }
    if (req.headers['x-service-key'] !== SERVICE_KEY) {
      res.statusCode = 403;
      res.end('{"error":"SERVICE_KEY_INVALID"}');
      return;
    }
    res.end(
      JSON.stringify({
        revocations: [
          { sessionId: 'sid-preloaded', userId: 'user-1', expiresAt: inTenMinutes() },
          { sessionId: 'sid-long-gone', userId: 'user-1', expiresAt: new Date(Date.now() - 60_000).toISOString() },
        ],
      }),
    );
  });
  for (let i = 0; i < 2; i++) gateways.push(await startTestGateway(ctx, { AUTH_SVC_URL: auth.url, GDPR_SVC_URL: gdpr.url }));
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all([auth, gdpr].map((s) => s?.close()));
  await issuer?.close();
  if (ctx) await cleanup(ctx);
});

async function callAs(gw: ServiceHandle, token: string): Promise<{ status: number; error: unknown }> {
  const res = await fetch(`${gw.url}/api/v1/me/data`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, error: (await json(res)).error };
}

describe('revoked-session denylist', () => {
  it('loads the revocations in force from auth-svc on start, with the service key', async () => {
    const token = await issuer.sign({ sid: 'sid-preloaded' });
    for (const gw of gateways) {
      await eventually(async () => (await callAs(gw, token)).status === 401, 5_000);
      expect(await callAs(gw, token)).toEqual({ status: 401, error: 'TOKEN_REVOKED' });
    }
    const listCalls = auth.requests.filter((r) => r.url === '/api/v1/internal/sessions/revoked');
    expect(listCalls.length).toBeGreaterThanOrEqual(2);
    expect(listCalls.every((r) => r.headers['x-service-key'] === SERVICE_KEY)).toBe(true);
    // An entry already past its expiry is not kept.
    expect((await callAs(gateways[0], await issuer.sign({ sid: 'sid-long-gone' }))).status).toBe(200);
  });

  it('refuses a revoked sid on every instance within a second of session.revoked.v1, cached token or not', async () => {
    const token = await issuer.sign({ sid: 'sid-live' });
    // Both instances have verified (and cached) the token before the revocation.
    for (const gw of gateways) expect((await callAs(gw, token)).status).toBe(200);
    const other = await issuer.sign({ sid: 'sid-other' });

    await publishRevocation(ctx, 'sid-live', new Date(Date.now() + 15 * 60_000));
    for (const gw of gateways) {
      await eventually(async () => (await callAs(gw, token)).status === 401, 1_000, 20);
      expect(await callAs(gw, token)).toEqual({ status: 401, error: 'TOKEN_REVOKED' });
      // Other sessions of the same user are untouched.
      expect((await callAs(gw, other)).status).toBe(200);
    }
    const metrics = await (await fetch(`${gateways[0].url}/metrics`)).text();
    expect(metrics).toMatch(/gateway_jwt_failures_total\{reason="revoked"\} [1-9]/);
  });

  it('starts while auth-svc is not up yet, and loads the list once it is', async () => {
    const down = await closedUrl();
    const gw = await startTestGateway(ctx, { AUTH_SVC_URL: down, GDPR_SVC_URL: gdpr.url });
    let late: Stub | undefined;
    try {
      const token = await issuer.sign({ sid: 'sid-late' });
      expect((await callAs(gw, token)).status).toBe(200);
      late = await startStub(
        'late-auth',
        (_req, res) => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ revocations: [{ sessionId: 'sid-late', userId: 'u', expiresAt: inTenMinutes() }] }));
        },
        Number(new URL(down).port),
      );
      await eventually(async () => (await callAs(gw, token)).error === 'TOKEN_REVOKED', 8_000);
    } finally {
      await gw.close();
      await late?.close();
    }
  });
});

describe('bus reconnect', () => {
  it('reloads the revocations from auth-svc after the broker connection comes back', async () => {
    const broker = await startCuttableProxy(new URL(ctx.bus.AMQP_URL));
    const listed: Array<{ sessionId: string; userId: string; expiresAt: string }> = [];
    let loads = 0;
    const authSvc = await startStub('auth-reconnect', (_req, res) => {
      loads++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ revocations: listed }));
    });
    const url = new URL(ctx.bus.AMQP_URL);
    url.host = `127.0.0.1:${broker.port}`;
    const gw = await startTestGateway(ctx, { AUTH_SVC_URL: authSvc.url, GDPR_SVC_URL: gdpr.url, AMQP_URL: url.toString() });
    try {
      await eventually(() => loads >= 1, 5_000);
      const token = await issuer.sign({ sid: 'sid-while-away' });
      expect((await callAs(gw, token)).status).toBe(200);
      // Revoked while this instance was cut off from the broker: the event never reaches it…
      listed.push({ sessionId: 'sid-while-away', userId: 'user-1', expiresAt: inTenMinutes() });
      const before = loads;
      broker.cut();
      // …but the reload on reconnect does.
      await eventually(() => loads > before, 10_000);
      await eventually(async () => (await callAs(gw, token)).error === 'TOKEN_REVOKED', 5_000);
      await eventually(async () => (await fetch(`${gw.url}/readyz`)).status === 200, 10_000);
    } finally {
      await gw.close();
      await authSvc.close();
      await broker.close();
    }
  });
});

/** A TCP proxy in front of the broker whose connections the test can cut (the broker stays up). */
async function startCuttableProxy(target: URL): Promise<{ port: number; cut: () => void; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
    const upstream = connect(Number(target.port || 5672), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const cut = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    port: (server.address() as AddressInfo).port,
    cut,
    close: () =>
      new Promise<void>((r) => {
        cut();
        server.close(() => r());
      }),
  };
}

describe('RevokedSessions', () => {
  it('forgets an entry once the session’s last token has expired', () => {
    const list = new RevokedSessions();
    list.add('s1', 2_000, 1_000);
    list.add('s1', 1_500, 1_000); // an earlier expiry never shortens the entry
    expect(list.has('s1', 1_999)).toBe(true);
    expect(list.has('s1', 2_000)).toBe(false);
    expect(list.size).toBe(0);
    list.add('s2', 500, 1_000);
    expect(list.has('s2', 400)).toBe(false);
    list.add('s3', 3_000, 1_000);
    list.sweep(3_001);
    expect(list.size).toBe(0);
  });
});
