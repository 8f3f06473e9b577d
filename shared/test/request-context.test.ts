import helmet from 'helmet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, createLogger, helmetHeaders, type ServiceHandle } from '@mana/shared';
import { serveApp } from './helpers/http';

/** The service shell's request context and security headers, over real HTTP. */
describe('request context and security headers', () => {
  const lines: Array<Record<string, unknown>> = [];
  let svc: ServiceHandle;

  beforeAll(async () => {
    const logger = createLogger('ctx-test', 'info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const { app, finish } = createApp({ logger });
    app.get('/logs', (req, res) => {
      req.log.info({ step: 1 }, 'first');
      req.log.info({ step: 2 }, 'second');
      res.json({ same: req.log === req.log });
    });
    app.get('/own-csp', (_req, res) => {
      res.setHeader('Content-Security-Policy', "default-src 'self'");
      res.json({});
    });
    svc = await serveApp(finish());
  });
  afterAll(async () => {
    await svc?.close();
  });

  it("sets helmet's own choice of headers on every answer", async () => {
    const expected: Array<[string, string]> = [];
    helmet()(
      {} as never,
      { setHeader: (n: string, v: unknown) => expected.push([n, String(v)]), removeHeader: () => undefined } as never,
      () => undefined,
    );
    expect(helmetHeaders()).toEqual(expected);
    const res = await fetch(`${svc.url}/nope`);
    expect(res.status).toBe(404);
    for (const [name, value] of expected) expect(res.headers.get(name), name).toBe(value);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
  });

  it('lets a route set its own value of one of them', async () => {
    const res = await fetch(`${svc.url}/own-csp`);
    expect(res.headers.get('content-security-policy')).toBe("default-src 'self'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it("binds the request id to the route's logger and to the access log line", async () => {
    lines.length = 0;
    const res = await fetch(`${svc.url}/logs`, { headers: { 'x-request-id': 'ctx-1' } });
    expect(res.headers.get('x-request-id')).toBe('ctx-1');
    expect(await res.json()).toEqual({ same: true });
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.map((l) => [l.msg, l.requestId])).toEqual([
      ['first', 'ctx-1'],
      ['second', 'ctx-1'],
      ['request', 'ctx-1'],
    ]);
    expect(lines[2]).toMatchObject({ method: 'GET', path: '/logs', status: 200, level: 30 });
  });

  it('makes a request id when the one sent is malformed', async () => {
    lines.length = 0;
    const res = await fetch(`${svc.url}/logs`, { headers: { 'x-request-id': 'bad id with spaces' } });
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.every((l) => l.requestId === id)).toBe(true);
  });
});
