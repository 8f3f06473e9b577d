import type { Express } from 'express';
import { startHttp, type ServiceHandle } from '@mana/shared';
import { silent } from './bus';

/** Serves an app on a free port through the real lifecycle (port 0, closed in afterAll). */
export function serveApp(app: Express): Promise<ServiceHandle> {
  return startHttp({ name: 'test-app', handler: app, port: 0, host: '127.0.0.1', logger: silent, drainTimeoutMs: 1_000 });
}
