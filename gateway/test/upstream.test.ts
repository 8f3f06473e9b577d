import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceHandle } from '@mana/shared';
import { startTestIssuer, type TestIssuer } from '@mana/shared/testing';
import { proxyRequest, type ProxyOptions } from '../src/proxy';
import { createPools, destroyPools } from '../src/upstream';
import { closedUrl, cleanup, json, newContext, startStub, startTestGateway, type Stub, type TestContext } from './helpers';

let issuer: TestIssuer;
let ctx: TestContext;
let gw: ServiceHandle;
let a: Stub;
let b: Stub;
let hangs: Stub;
let resets: Stub;
let down: string;

beforeAll(async () => {
  issuer = await startTestIssuer();
  ctx = newContext(issuer);
  a = await startStub('a');
  b = await startStub('b');
  hangs = await startStub('hangs', () => undefined); // never answers
  resets = await startStub('resets', (req) => req.socket.destroy());
  down = await closedUrl();
  gw = await startTestGateway(ctx, {
    // auth: two healthy instances (round robin); credits: a dead one first, then a healthy one (failover)
    AUTH_SVC_URL: `${a.url},${b.url}`,
    CREDITS_SVC_URL: `${down}, ${a.url}`,
    VAULT_SVC_URL: down,
    GDPR_SVC_URL: hangs.url,
    ADMIN_SVC_URL: resets.url,
    UPSTREAM_TIMEOUT_MS: '300',
    GATEWAY_VERIFY_JWT: 'false',
  });
});

afterAll(async () => {
  await gw?.close();
  await Promise.all([a, b, hangs, resets].map((s) => s?.close()));
  await issuer?.close();
  if (ctx) await cleanup(ctx);
});

describe('upstream instances', () => {
  it('spreads requests round robin over the instances of a service', async () => {
    const seen: unknown[] = [];
    for (let i = 0; i < 6; i++) seen.push((await json(await fetch(`${gw.url}/api/auth/session`))).service);
    expect(seen).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
  });

  it('moves on to the next instance when a connection is refused, body intact', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gw.url}/api/v1/credits/webhook`, {
        method: 'POST',
        body: 'p'.repeat(300),
        headers: { 'content-type': 'text/plain' },
      });
      expect(res.status).toBe(200);
      expect(await json(res)).toMatchObject({ service: 'a', method: 'POST', bodyBytes: 300 });
    }
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toContain(`gateway_upstream_errors_total{upstream="credits",instance="${down}",kind="refused"}`);
  });

  it('answers 503 UPSTREAM_UNAVAILABLE when no instance is reachable', async () => {
    const res = await fetch(`${gw.url}/api/v1/me/encryption-vault/key`, { headers: { 'x-request-id': 'r-503' } });
    expect(res.status).toBe(503);
    expect(await json(res)).toEqual({ error: 'UPSTREAM_UNAVAILABLE', message: expect.any(String), requestId: 'r-503' });
  });

  it('answers 502 UPSTREAM_UNAVAILABLE when the upstream drops the connection', async () => {
    const res = await fetch(`${gw.url}/api/v1/admin/users`);
    expect(res.status).toBe(502);
    const body = await json(res);
    expect(body.error).toBe('UPSTREAM_UNAVAILABLE');
    expect(body.requestId).toEqual(res.headers.get('x-request-id'));
  });

  it('answers 504 UPSTREAM_TIMEOUT when the upstream takes too long', async () => {
    const res = await fetch(`${gw.url}/api/v1/me/data`);
    expect(res.status).toBe(504);
    expect((await json(res)).error).toBe('UPSTREAM_TIMEOUT');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/gateway_upstream_errors_total\{upstream="gdpr",instance="[^"]+",kind="timeout"\} [1-9]/);
  });

  it('passes upstream status codes and bodies through untouched', async () => {
    const teapot = await startStub('teapot', (_req, res) => {
      res.statusCode = 418;
      res.setHeader('content-type', 'application/json');
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.end('{"error":"TEAPOT"}');
    });
    const gw2 = await startTestGateway(ctx, { AUTH_SVC_URL: teapot.url });
    try {
      const res = await fetch(`${gw2.url}/api/auth/sign-in/email`, {
        method: 'POST',
        body: '{}',
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status).toBe(418);
      expect(await res.text()).toBe('{"error":"TEAPOT"}');
      expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    } finally {
      await gw2.close();
      await teapot.close();
    }
  });

  it("writes the gateway's headers with the upstream's: an upstream's own wins, repeated fields stay, hop-by-hop and CORS go", async () => {
    const own = await startStub('own-headers', (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('content-security-policy', "default-src 'self'");
      res.setHeader('link', ['</a.css>; rel=preload', '</b.js>; rel=preload']);
      res.setHeader('vary', 'Accept-Encoding');
      res.setHeader('connection', 'x-hop, x-frame-options');
      res.setHeader('x-hop', 'secret');
      // Listed in Connection: a hop-by-hop field, so it neither goes out nor replaces the gateway's own.
      res.setHeader('x-frame-options', 'SAMEORIGIN');
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.setHeader('keep-alive', 'timeout=5');
      res.setHeader('access-control-allow-origin', '*');
      res.end('{}');
    });
    const gw2 = await startTestGateway(ctx, { GDPR_SVC_URL: own.url, GATEWAY_VERIFY_JWT: 'false' });
    try {
      const res = await fetch(`${gw2.url}/api/v1/me/data`, { headers: { 'x-request-id': 'r-own-headers' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-security-policy')).toBe("default-src 'self'");
      expect(res.headers.get('strict-transport-security')).toMatch(/max-age=31536000/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-request-id')).toBe('r-own-headers');
      expect(res.headers.get('link')).toBe('</a.css>; rel=preload, </b.js>; rel=preload');
      expect(res.headers.get('vary')).toBe('Origin, Accept-Encoding');
      expect(res.headers.get('x-hop')).toBeNull();
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(await res.json()).toEqual({});
    } finally {
      await gw2.close();
      await own.close();
    }
  });

  it('keeps repeated upstream fields when the answer already carries a header of its own (a drain says Connection: close)', async () => {
    const cookies = await startStub('cookies', (_req, res) => {
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.setHeader('link', ['</a.css>; rel=preload', '</b.js>; rel=preload']);
      res.end('{}');
    });
    const pool = createPools({
      auth: [cookies.url],
      vault: [cookies.url],
      gdpr: [cookies.url],
      admin: [cookies.url],
      credits: [cookies.url],
    });
    const opts: ProxyOptions = { timeoutMs: 5_000, bodyLimit: 1024, trustPeer: () => false };
    const server = createServer((req, res) => {
      res.setHeader('Connection', 'close');
      proxyRequest(req, res, pool.auth, opts, { requestId: 'r-drain', proto: 'http', host: 'gw' });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
      expect(res.status).toBe(200);
      expect(res.headers.get('connection')).toBe('close');
      expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
      expect(res.headers.get('link')).toBe('</a.css>; rel=preload, </b.js>; rel=preload');
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await destroyPools(pool);
      await cookies.close();
    }
  });

  it('passes over an interim answer (103 Early Hints) and delivers the final one', async () => {
    const hints = await startStub('hints', (_req, res) => {
      res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style' });
      res.setHeader('content-type', 'application/json');
      res.end('{"final":true}');
    });
    const gw2 = await startTestGateway(ctx, { GDPR_SVC_URL: hints.url, GATEWAY_VERIFY_JWT: 'false' });
    try {
      const res = await fetch(`${gw2.url}/api/v1/me/data`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ final: true });
    } finally {
      await gw2.close();
      await hints.close();
    }
  });

  it('cuts the upstream exchange of a client that stops reading the answer (no progress for the upstream timeout)', async () => {
    let upstreamClosed: ((finished: boolean) => void) | undefined;
    const closed = new Promise<boolean>((resolve) => (upstreamClosed = resolve));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    // 64 MB, written as fast as the gateway takes it: far more than the sockets between here and a paused client hold.
    const big = await startStub('big', (_req, res) => {
      res.setHeader('content-type', 'application/octet-stream');
      let left = 1024;
      const pump = () => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => upstreamClosed?.(res.writableFinished));
      pump();
    });
    const gw2 = await startTestGateway(ctx, { GDPR_SVC_URL: big.url, GATEWAY_VERIFY_JWT: 'false', UPSTREAM_TIMEOUT_MS: '300' });
    const client = request(`${gw2.url}/api/v1/me/data`);
    try {
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        client.on('response', resolve).on('error', reject).end();
      });
      expect(res.statusCode).toBe(200);
      res.pause(); // and never read again
      expect(await closed).toBe(false);
    } finally {
      client.destroy();
      await gw2.close();
      await big.close();
    }
  });
});
