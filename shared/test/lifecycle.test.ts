import { Agent, request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createApp, startHttp } from '@mana/shared';
import { silent } from './helpers/bus';

function get(url: string, agent: Agent): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('graceful shutdown (startHttp)', () => {
  it('finishes a slow request, tells its keep-alive client to close, then runs the steps in order (a hung one times out)', async () => {
    const state = { shuttingDown: false };
    const { app, finish } = createApp({ logger: silent, state });
    let release: () => void = () => undefined;
    app.get('/slow', async (_req, res) => {
      await new Promise<void>((r) => (release = r));
      res.json({ done: true });
    });
    const steps: string[] = [];
    const handle = await startHttp({
      name: 'lifecycle-test',
      handler: finish(),
      port: 0,
      host: '127.0.0.1',
      logger: silent,
      state,
      // far beyond the test timeout: only a drain that ends by itself lets this test pass
      drainTimeoutMs: 120_000,
      steps: [
        { name: 'consumers', run: () => void steps.push('consumers') },
        { name: 'hangs', run: () => new Promise(() => undefined), timeoutMs: 50 },
        { name: 'pool', run: () => void steps.push('pool') },
      ],
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await get(`${handle.url}/healthz`, agent)).status).toBe(200); // a pooled keep-alive socket
      const slow = get(`${handle.url}/slow`, agent);
      await new Promise((r) => setTimeout(r, 50));
      const closing = handle.close();
      expect(state.shuttingDown).toBe(true);
      release();
      expect(await slow).toMatchObject({ status: 200, connection: 'close' });
      await closing;
      expect(steps).toEqual(['consumers', 'pool']);
      await expect(get(`${handle.url}/healthz`, new Agent())).rejects.toThrow();
      // idempotent
      await handle.close();
    } finally {
      agent.destroy();
    }
  });

  it('closes idle keep-alive connections at once, so the drain waits only for requests in flight', async () => {
    const state = { shuttingDown: false };
    const { app, finish } = createApp({ logger: silent, state });
    let release: () => void = () => undefined;
    app.get('/slow', async (_req, res) => {
      await new Promise<void>((r) => (release = r));
      res.json({ done: true });
    });
    const handle = await startHttp({
      name: 't',
      handler: finish(),
      port: 0,
      host: '127.0.0.1',
      logger: silent,
      state,
      drainTimeoutMs: 120_000,
    });
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    const other = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await get(`${handle.url}/healthz`, keepAlive);
      await get(`${handle.url}/healthz`, other);
      const slow = get(`${handle.url}/slow`, other); // keeps the drain open
      await new Promise((r) => setTimeout(r, 50));
      const closing = handle.close();
      // the idle keep-alive socket was closed at once, so this request needs a new connection: refused
      await expect(get(`${handle.url}/readyz`, keepAlive)).rejects.toThrow();
      release();
      await slow;
      await closing;
    } finally {
      keepAlive.destroy();
      other.destroy();
    }
  });

  it('runs the steps when the port is taken, then rejects with the listen error', async () => {
    const first = await startHttp({ name: 'first', handler: (_req, res) => res.end(), port: 0, host: '127.0.0.1', logger: silent });
    const steps: string[] = [];
    try {
      await expect(
        startHttp({
          name: 'second',
          handler: (_req, res) => res.end(),
          port: first.port,
          host: '127.0.0.1',
          logger: silent,
          steps: [
            { name: 'bus', run: () => void steps.push('bus') },
            { name: 'pool', run: () => void steps.push('pool') },
          ],
        }),
      ).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(steps).toEqual(['bus', 'pool']);
    } finally {
      await first.close();
    }
  });
});
