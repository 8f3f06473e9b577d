import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AmqpBus, createLogger, createEvent, type ServiceHandle } from '@mana/shared';
import { TEST_REDIS_URL, deleteRedisKeys, deleteTestBus, testBusEnv, uniqueName, type TestIssuer } from '@mana/shared/testing';
import { startGateway } from '../src/server';

const REVOKED_PATH = '/api/v1/internal/sessions/revoked';

export const SERVICE_KEY = 'test-service-key-0123456789abcdef0123456789';

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
}

export interface Stub {
  name: string;
  url: string;
  port: number;
  server: Server;
  requests: Recorded[];
  close: () => Promise<void>;
}

export type StubHandler = (req: IncomingMessage, res: ServerResponse, rec: Recorded) => void;

/** A trivial stand-in for a service: records each request and answers with what it saw. */
export async function startStub(name: string, handler?: StubHandler, port = 0): Promise<Stub> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => (bodyBytes += c.length));
    req.on('end', () => {
      const rec: Recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes };
      if (!handler && req.url === REVOKED_PATH && !req.headers['x-request-id']) {
        // The gateway's own background load of revocations (not a proxied request): not recorded.
        res.setHeader('content-type', 'application/json');
        res.end('{"revocations":[]}');
        return;
      }
      requests.push(rec);
      if (handler) {
        handler(req, res, rec);
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ service: name, method: rec.method, url: rec.url, bodyBytes }));
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const bound = (server.address() as AddressInfo).port;
  return {
    name,
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    server,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A URL nothing listens on (connection refused). */
export async function closedUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/** Bus names, Redis key prefix and issuer settings of one test file. */
export interface TestContext {
  bus: ReturnType<typeof testBusEnv>;
  redisPrefix: string;
  issuer: TestIssuer;
}

export function newContext(issuer: TestIssuer): TestContext {
  const name = uniqueName('gw');
  return { bus: testBusEnv(name), redisPrefix: name, issuer };
}

export function gatewayEnv(ctx: TestContext, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: '0',
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    ...ctx.bus,
    AUTH_JWKS_URL: ctx.issuer.jwksUrl,
    BASE_URL: ctx.issuer.issuer,
    JWT_AUDIENCE: ctx.issuer.audience,
    MANA_SERVICE_KEY: SERVICE_KEY,
    REDIS_URL: TEST_REDIS_URL,
    RATE_LIMIT_PREFIX: ctx.redisPrefix,
    ...extra,
  };
}

export function startTestGateway(ctx: TestContext, extra: Record<string, string> = {}): Promise<ServiceHandle> {
  return startGateway({ env: gatewayEnv(ctx, extra) });
}

/** Publishes an event on the test file's own exchange. */
export async function publishRevocation(ctx: TestContext, sessionId: string, expiresAt: Date): Promise<void> {
  const bus = new AmqpBus({
    url: ctx.bus.AMQP_URL,
    exchange: ctx.bus.AMQP_EXCHANGE,
    queuePrefix: ctx.bus.AMQP_QUEUE_PREFIX,
    logger: createLogger('test', 'silent'),
  });
  await bus.start();
  try {
    await bus.publish(createEvent('session.revoked.v1', { sessionId, userId: 'user-1', expiresAt: expiresAt.toISOString() }));
  } finally {
    await bus.close();
  }
}

/** Removes what the file left on the shared broker and in Redis. */
export async function cleanup(ctx: TestContext): Promise<void> {
  await deleteTestBus(ctx.bus);
  await deleteRedisKeys(ctx.redisPrefix);
}

export async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}
