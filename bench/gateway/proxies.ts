// The two proxies the gateway could use, side by side on a plain node:http server (no Express, no pipeline):
// its own `proxyRequest` and http-proxy-middleware, each round robin over the same upstream instances with
// failover to the next one when a connection is refused.
import { Agent, type ClientRequest, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createProxyMiddleware, type Plugin } from 'http-proxy-middleware';
import { proxyRequest, type ProxyOptions } from '../../gateway/src/proxy';
import { createPools } from '../../gateway/src/upstream';

export function ownProxy(urls: string[]): RequestListener {
  const pool = createPools({ auth: urls, vault: urls, gdpr: urls, admin: urls, credits: urls }).gdpr;
  const opts: ProxyOptions = { timeoutMs: 30_000, bodyLimit: 100 * 1024, trustPeer: () => false };
  return (req, res) => proxyRequest(req, res, pool, opts, { requestId: 'bench', proto: 'http', host: req.headers.host ?? '' });
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);
const START = Symbol('start');
const TRIED = Symbol('tried');
type Req = IncomingMessage & { [START]?: number; [TRIED]?: number };

/**
 * http-proxy-middleware as the gateway would use it: keep-alive agent, X-Forwarded-*, the upstream timeout, the request
 * id, the gateway's header policy (no upstream Access-Control-*), round robin, and failover in its error hook (safe
 * only for bodiless requests: hpm pipes the body into the first attempt). `ejectPlugins` drops hpm's default plugins
 * (its logger builds a URL per response even when logging nowhere): the library's best case.
 */
export function hpmProxy(urls: string[], opts: { ejectPlugins: boolean }): RequestListener {
  let next = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
  const onError = (err: Error & { code?: string }, req: Req, res: ServerResponse | Socket) => {
    if (!('writeHead' in res) || res.headersSent) {
      res.destroy();
      return;
    }
    const tried = (req[TRIED] ?? 0) + 1;
    if (UNREACHABLE.has(err.code ?? '') && tried < urls.length) {
      req[TRIED] = tried;
      void proxy(req, res);
      return;
    }
    res.writeHead(UNREACHABLE.has(err.code ?? '') ? 503 : 502, { 'content-type': 'application/json' });
    res.end('{"error":"UPSTREAM_UNAVAILABLE"}');
  };
  const errorPlugin: Plugin<Req, ServerResponse> = (server) => server.on('error', onError);
  const onProxyReq = (proxyReq: ClientRequest) => proxyReq.setHeader('x-request-id', 'bench');
  const onProxyRes = (proxyRes: IncomingMessage) => {
    for (const key in proxyRes.headers) if (key.startsWith('access-control-')) delete proxyRes.headers[key];
  };
  const hooks: Plugin<Req, ServerResponse> = (server) => {
    server.on('proxyReq', onProxyReq);
    server.on('proxyRes', onProxyRes);
  };
  const proxy = createProxyMiddleware<Req, ServerResponse>({
    target: urls[0],
    router: (req) => {
      req[START] ??= next++ % urls.length;
      return urls[(req[START] + (req[TRIED] ?? 0)) % urls.length];
    },
    agent,
    xfwd: true,
    proxyTimeout: 30_000,
    ...(opts.ejectPlugins
      ? { ejectPlugins: true, plugins: [errorPlugin, hooks] }
      : { on: { error: onError, proxyReq: onProxyReq, proxyRes: onProxyRes } }),
  });
  return (req, res) => void proxy(req, res);
}
