import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceHandle } from '@mana/shared';
import { eventually, startTestIssuer, type TestIssuer } from '@mana/shared/testing';
import { cleanup, json, newContext, startStub, startTestGateway, type Stub, type TestContext } from './helpers';

let issuer: TestIssuer;
let ctx: TestContext;
let gdpr: Stub;

beforeAll(async () => {
  issuer = await startTestIssuer();
  ctx = newContext(issuer);
  gdpr = await startStub('gdpr');
});

afterAll(async () => {
  await gdpr?.close();
  await issuer?.close();
  if (ctx) await cleanup(ctx);
});

describe('revocation fails closed', () => {
  it('reports not ready until the revocation list was loaded once, and stays ready across reloads', async () => {
    let serving = false;
    let listCalls = 0;
    const auth = await startStub('auth', (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url !== '/api/v1/internal/sessions/revoked') {
        res.end('{}');
        return;
      }
      listCalls++;
      if (!serving) {
        res.statusCode = 503;
        res.end('{"error":"SERVICE_UNAVAILABLE"}');
        return;
      }
      res.end('{"revocations":[]}');
    });
    let gw: ServiceHandle | undefined;
    try {
      gw = await startTestGateway(ctx, { AUTH_SVC_URL: auth.url, GDPR_SVC_URL: gdpr.url });
      const url = `${gw.url}/readyz`;
      // The list was asked for (and refused): the instance must not take traffic yet.
      await eventually(() => listCalls >= 1, 5_000);
      const notReady = await fetch(url);
      expect(notReady.status).toBe(503);
      expect(await json(notReady)).toEqual({ status: 'not_ready', checks: { bus: 'ok', rateLimitStore: 'ok', revocations: 'fail' } });

      serving = true;
      await eventually(async () => (await fetch(url)).status === 200, 15_000);
      expect(await json(await fetch(url))).toEqual({ status: 'ready', checks: { bus: 'ok', rateLimitStore: 'ok', revocations: 'ok' } });

      // Loaded once is enough: auth-svc refusing later reloads keeps the list held and the instance ready.
      serving = false;
      expect((await fetch(url)).status).toBe(200);
    } finally {
      await gw?.close();
      await auth.close();
    }
  }, 30_000);
});
