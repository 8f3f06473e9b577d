import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AuthTimeStub {
  url: string;
  /** Sets (or with `null` forgets: 404) the last authentication of a session. */
  set: (sid: string, entry: { userId: string; authenticatedAt: Date } | null) => void;
  close: () => Promise<void>;
}

/**
 * auth-svc's `GET /api/v1/internal/sessions/:sid/auth-time` for vault-svc's own tests, whose tokens come
 * from a test issuer rather than a real session. A token of `startVaultStack().token(user)` (sid
 * `sid-<user>`) authenticated just now unless `set` says otherwise. The real route, with real sessions,
 * is tested end to end in test/e2e/auth-reauth.test.ts.
 */
export async function startAuthTimeStub(serviceKey: string): Promise<AuthTimeStub> {
  const entries = new Map<string, { userId: string; authenticatedAt: Date } | null>();
  const server: Server = createServer((req, res) => {
    const m = /^\/api\/v1\/internal\/sessions\/([^/]+)\/auth-time$/.exec(req.url ?? '');
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.headers['x-service-key'] !== serviceKey) return reply(403, { error: 'SERVICE_KEY_INVALID' });
    if (!m?.[1]) return reply(404, { error: 'NOT_FOUND' });
    const sid = decodeURIComponent(m[1]);
    const entry = entries.has(sid)
      ? entries.get(sid)
      : sid.startsWith('sid-')
        ? { userId: sid.slice(4), authenticatedAt: new Date() }
        : null;
    if (!entry) return reply(404, { error: 'SESSION_NOT_FOUND' });
    reply(200, { sessionId: sid, userId: entry.userId, authenticatedAt: entry.authenticatedAt.toISOString() });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    set: (sid, entry) => entries.set(sid, entry),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
