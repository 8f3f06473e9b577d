import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { RequestListener } from 'node:http';
import type { Logger } from 'pino';
import type { AppState } from './app';

export interface ShutdownStep {
  name: string;
  run: () => unknown;
  timeoutMs?: number;
}

export interface ServiceHandle {
  server: Server;
  port: number;
  url: string;
  /** Ordered, idempotent shutdown: stop accepting, drain, then each step with its own timeout. */
  close: () => Promise<void>;
}

export interface StartOptions {
  name: string;
  handler: RequestListener;
  port: number;
  host?: string;
  logger: Logger;
  state?: AppState;
  drainTimeoutMs?: number;
  /** Run after requests drained, in order: consumers, bus, pool… (also when the server fails to listen). */
  steps?: ShutdownStep[];
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

export async function startHttp(opts: StartOptions): Promise<ServiceHandle> {
  const server = createServer(opts.handler);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  let draining = false;
  // Keep-alive clients (other services' connection pools) may send more requests on a connection that is
  // busy when the drain starts: every response from then on says `Connection: close`, so the drain ends
  // with the last response instead of the timeout. The responses in flight are found through their connections
  // (tracked per connection, not per request: a set every request passes through kept each response reachable
  // from the old generation, and under load V8 promoted kilobytes per request into it, docs/BENCHMARKS.md).
  const connections = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  server.prependListener('request', (_req, res) => {
    if (draining) res.setHeader('Connection', 'close');
  });
  const runSteps = async () => {
    for (const step of opts.steps ?? []) {
      try {
        await withTimeout(Promise.resolve().then(step.run), step.timeoutMs ?? 5_000, step.name);
      } catch (err) {
        opts.logger.error({ step: step.name, err: (err as Error).message }, 'shutdown step failed');
      }
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    // A port already in use must not leave what the steps would close (pools, bus, consumers) running.
    await runSteps();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  opts.logger.info({ port }, `${opts.name} listening`);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      if (opts.state) opts.state.shuttingDown = true;
      draining = true;
      for (const socket of connections) {
        // The response a connection is busy with: node:http's own link (a private field, there since Node 0.x, cleared
        // when the response is done). Responses queued behind it on a pipelining connection are not marked (clients
        // seldom pipeline; the services' own undici pools do not): the connection is closed once idle.
        const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
        if (res && !res.headersSent) res.setHeader('Connection', 'close');
      }
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // connections that finish their current request in the meantime are idle now: close those too
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      try {
        await withTimeout(drained, opts.drainTimeoutMs ?? 10_000, 'draining requests');
      } catch (err) {
        opts.logger.warn({ err: (err as Error).message }, 'forcing open connections closed');
        server.closeAllConnections();
      } finally {
        clearInterval(sweep);
      }
      await runSteps();
      opts.logger.info(`${opts.name} stopped`);
    })();
    return closing;
  };
  return { server, port, url, close };
}

/** SIGINT/SIGTERM run `close` once; a second signal forces exit. */
export function handleSignals(close: () => Promise<void>, logger: Logger): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal, forcing exit');
      process.exit(1);
    }
    signalled = true;
    logger.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
