import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceHandle } from '@mana/shared';
import { eventually, startTestIssuer, type TestIssuer } from '@mana/shared/testing';
import { cleanup, newContext, startStub, startTestGateway, type Stub, type TestContext } from './helpers';

let issuer: TestIssuer;
let ctx: TestContext;
let gw: ServiceHandle;
let eager: Stub;
/** Sign-up requests whose connection the gateway cut. */
let cut = 0;

beforeAll(async () => {
  issuer = await startTestIssuer();
  ctx = newContext(issuer);
  eager = await startStub('auth');
  // Answers as soon as the headers arrive, without waiting for the body (as a 404 or an early refusal would).
  eager.server.removeAllListeners('request');
  eager.server.on('request', (req, res) => {
    if (req.url?.startsWith('/api/auth/sign-up')) req.socket.once('close', () => cut++);
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end('{"early":true}');
  });
  gw = await startTestGateway(ctx, { AUTH_SVC_URL: eager.url, BODY_LIMIT: '1kb' });
});

afterAll(async () => {
  await gw?.close();
  await eager?.close();
  await issuer?.close();
  if (ctx) await cleanup(ctx);
});

describe('a streamed body passing the limit after the upstream answered', () => {
  it('leaves the answer as it was and the gateway up (no 413 once headers are sent)', async () => {
    const { hostname, port } = new URL(gw.url);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          hostname,
          port,
          path: '/api/auth/sign-up/email',
          method: 'POST',
          headers: { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          // Only now send the rest: 4 kB against a 1 kB limit.
          let sent = 0;
          const next = () => {
            if (sent === 8) {
              req.end();
              return;
            }
            sent++;
            req.write('z'.repeat(512), () => setImmediate(next));
          };
          next();
        },
      );
      req.on('error', reject);
      req.write('a');
    });
    expect(answer).toEqual({ status: 200, body: '{"early":true}' });
    // Past the limit the upstream exchange is cut (never ended with a truncated body), and the gateway serves on.
    await eventually(() => expect(cut).toBe(1));
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });
});
