import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { createLogger, errorHandler, openApiFragment, type OpenApiDocument } from '@mana/shared';
import { expressRoutes } from '@mana/shared/testing';
import { buildApp, type GatewayDeps } from '../src/app';
import { createBegin } from '../src/front';
import { GatewayMetrics } from '../src/metrics';
import { createApiReference, gatewayApi, mountReference } from '../src/reference';
import { createPools, destroyPools } from '../src/upstream';

/** The gateway's merge of the services' API reference parts: caching, a service that stops answering, one that never did. */

const logger = createLogger('reference-test', 'silent');
const part = openApiFragment({
  service: 'auth-svc',
  description: 'test part',
  operations: [{ method: 'get', path: '/api/v1/auth/session', access: 'bearer', summary: 'The caller', responses: { 200: 'session' } }],
});

let upstream: Server;
let upstreamUrl: string;
let served = 0;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    served++;
    if (req.url !== '/openapi.json') return void res.writeHead(404).end();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(part));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => upstream.close(r));
});

afterEach(() => {
  vi.useRealTimers();
});

/** A port nothing listens on. */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  await new Promise((r) => s.close(r));
  return url;
}

const poolsFor = (url: string, authUrl = url) => createPools({ auth: [authUrl], vault: [url], gdpr: [url], admin: [url], credits: [url] });

describe('createApiReference', () => {
  test('merges every service’s part with the gateway’s own endpoints, fetching each part once a minute', async () => {
    const pools = poolsFor(upstreamUrl);
    try {
      const ref = createApiReference({ pools, baseUrl: 'https://auth.example.org', logger });
      const before = served;
      const doc: OpenApiDocument = await ref.document();
      expect(served - before).toBe(5);
      expect(doc.openapi).toMatch(/^3\.1\./);
      expect(doc.servers).toEqual([{ url: 'https://auth.example.org' }]);
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/auth/session', '/healthz', '/openapi.json', '/docs']));
      expect(doc.components.schemas.Error).toBeDefined();
      expect(await ref.document()).toBe(doc);
      expect(served - before).toBe(5);
      // Requests arriving together while a part is due share one fetch per service.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 61_000 });
      await Promise.all([ref.document(), ref.document(), ref.document()]);
      expect(served - before).toBe(10);
    } finally {
      await destroyPools(pools);
    }
  });

  test('a service that stops answering keeps its last part; one that never answered is 503 REFERENCE_UNAVAILABLE naming it', async () => {
    const dead = await deadUrl();
    // auth answers once, then "goes away" (its pool is pointed at a dead port after the first fetch).
    const pools = poolsFor(upstreamUrl);
    const ref = createApiReference({ pools, baseUrl: 'http://localhost:3001', logger });
    try {
      await ref.document();
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 61_000 });
      const deadPools = poolsFor(upstreamUrl, dead);
      Object.assign(pools.auth, { instances: deadPools.auth.instances });
      const stale = await ref.document();
      expect(stale.paths['/api/v1/auth/session']).toBeDefined();
      await destroyPools(deadPools);

      const neverPools = poolsFor(upstreamUrl, dead);
      const never = createApiReference({ pools: neverPools, baseUrl: 'http://localhost:3001', logger });
      await expect(never.document()).rejects.toMatchObject({
        code: 'REFERENCE_UNAVAILABLE',
        status: 503,
        message: expect.stringContaining('auth-svc'),
      });
      await destroyPools(neverPools);
    } finally {
      await destroyPools(pools);
    }
  });
});

describe('mountReference', () => {
  test('/openapi.json answers the error as JSON; /docs and its script are served with a strict CSP', async () => {
    const dead = await deadUrl();
    const pools = poolsFor(dead);
    const app = express();
    mountReference(app, createApiReference({ pools, baseUrl: 'http://localhost:3001', logger }));
    app.use(errorHandler);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const failed = await fetch(`${base}/openapi.json`);
      expect(failed.status).toBe(503);
      expect(await failed.json()).toMatchObject({ error: 'REFERENCE_UNAVAILABLE' });

      const docs = await fetch(`${base}/docs`);
      expect(docs.status).toBe(200);
      const csp = docs.headers.get('content-security-policy') ?? '';
      expect(csp).toMatch(/(^|; )script-src 'self'(;|$)/);
      expect(await docs.text()).toContain('<script src="/docs/redoc.standalone.js"></script>');
      const js = await fetch(`${base}/docs/redoc.standalone.js`);
      expect(js.headers.get('content-type')).toMatch(/javascript/);
      expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    } finally {
      await new Promise((r) => server.close(r));
      await destroyPools(pools);
    }
  });
});

test('every route of the gateway’s own Express app has an entry in gatewayApi, and every entry a route', () => {
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const deps = {
    logger,
    state: { shuttingDown: false },
    readiness: {},
    metrics,
    trustProxy: 'loopback',
    reference: { document: () => Promise.reject(new Error('not used')) },
  } as unknown as GatewayDeps;
  const app = buildApp(deps, createBegin({ logger, metrics, corsOrigins: [] }));
  // `ALL` on the gateway's paths is the 405 answer to other methods, not an endpoint.
  const routes = expressRoutes(app)
    .filter((r) => r.method !== 'ALL')
    .map((r) => `${r.method} ${r.path}`)
    .sort();
  expect(routes).toEqual(gatewayApi.map((op) => `${op.method.toUpperCase()} ${op.path}`).sort());
});
