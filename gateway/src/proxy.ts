import { request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { AppError, ERRORS } from '@mana/shared';
import { sendError } from './forwarding';
import type { UpstreamInstance, UpstreamPool } from './upstream';

/** What the gateway tells the upstream about the original request. */
export interface Forwarded {
  requestId: string;
  /** The client's scheme and host (after trusted proxies). */
  proto: string;
  host: string;
}

export type UpstreamFailure = 'refused' | 'reset' | 'timeout';

export interface ProxyOptions {
  timeoutMs: number;
  bodyLimit: number;
  /** Whether the direct peer may tell us the client chain (Express's compiled `trust proxy`). */
  trustPeer: (addr: string) => boolean;
  onUpstreamError?: (pool: UpstreamPool, instance: UpstreamInstance, kind: UpstreamFailure) => void;
}

/** Connection-scoped headers (RFC 9110 §7.6.1) never cross the proxy. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Errors meaning "this instance is not there": safe to try the next one, nothing was sent. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

const BODYLESS_RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  // The common case, on every request of a kept-alive client: nothing listed.
  if (!value || value === 'keep-alive' || value === 'close') return undefined;
  const tokens = (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t && t !== 'close' && t !== 'keep-alive');
  return tokens.length ? new Set(tokens) : undefined;
}

function upstreamRequestHeaders(req: IncomingMessage, fwd: Forwarded, opts: ProxyOptions, instance: UpstreamInstance): OutgoingHttpHeaders {
  const listed = connectionListed(req.headers.connection);
  const out: OutgoingHttpHeaders = {};
  const src = req.headers;
  for (const key in src) {
    if (HOP_BY_HOP.has(key) || listed?.has(key)) continue;
    if (key === 'host' || key.startsWith('x-forwarded-')) continue;
    out[key] = src[key];
  }
  const peer = req.socket.remoteAddress ?? '';
  const incoming = src['x-forwarded-for'];
  // A client's own X-Forwarded-For is kept only when it came through a proxy we trust.
  out['x-forwarded-for'] = incoming && opts.trustPeer(peer) ? `${Array.isArray(incoming) ? incoming.join(', ') : incoming}, ${peer}` : peer;
  out['x-forwarded-proto'] = fwd.proto;
  out['x-forwarded-host'] = fwd.host;
  out['x-request-id'] = fwd.requestId;
  out.host = instance.port === 80 || instance.port === 443 ? instance.hostname : `${instance.hostname}:${instance.port}`;
  return out;
}

function copyResponseHeaders(from: IncomingMessage, res: ServerResponse): void {
  const listed = connectionListed(from.headers.connection);
  const headers = from.headers;
  for (const key in headers) {
    if (HOP_BY_HOP.has(key) || listed?.has(key)) continue;
    // CORS is the gateway's decision, not the upstream's.
    if (key.startsWith('access-control-')) continue;
    const value = headers[key];
    if (value === undefined) continue;
    if (key === 'vary') {
      const mine = res.getHeader('vary');
      res.setHeader('vary', mine ? `${String(mine)}, ${String(value)}` : value);
      continue;
    }
    res.setHeader(key, value);
  }
}

const upstreamUnavailable = (status: 502 | 503) =>
  new AppError(
    'UPSTREAM_UNAVAILABLE',
    status,
    status === 503 ? 'The service is not reachable, try again shortly' : 'The service failed to answer',
    { expose: true },
  );
const upstreamTimeout = () => new AppError('UPSTREAM_TIMEOUT', 504, 'The service took too long to answer', { expose: true });

function hasBody(req: IncomingMessage): 'none' | 'sized' | 'chunked' {
  if (req.headers['transfer-encoding'] !== undefined) return 'chunked';
  const len = req.headers['content-length'];
  if (len === undefined || len === '0') return 'none';
  return 'sized';
}

/**
 * Streams the request to one instance of `pool`, and the answer back. The body is only read once
 * the upstream socket is connected, so a refused connection can move on to the next instance with
 * the body still unread.
 */
export function proxyRequest(req: IncomingMessage, res: ServerResponse, pool: UpstreamPool, opts: ProxyOptions, fwd: Forwarded): void {
  const body = hasBody(req);
  if (body === 'sized' && Number(req.headers['content-length']) > opts.bodyLimit) {
    res.setHeader('connection', 'close');
    sendError(res, ERRORS.payloadTooLarge(), fwd.requestId);
    return;
  }
  const instances = pool.order();
  let current: ClientRequest | undefined;
  /** Set once an answer (the upstream's or our error) is chosen. */
  let done = false;
  let streaming = false;
  res.on('close', () => {
    // The client went away: stop the upstream work it asked for.
    if (!res.writableFinished) current?.destroy();
  });

  const fail = (err: AppError) => {
    if (done) return;
    done = true;
    current?.destroy();
    sendError(res, err, fwd.requestId);
  };

  const attempt = (index: number, resetRetried: boolean) => {
    const instance = instances[index];
    let bodyStarted = false;
    let timedOut = false;
    const send = instance.protocol === 'https:' ? httpsRequest : httpRequest;
    const proxyReq = send({
      hostname: instance.hostname,
      port: instance.port,
      method: req.method,
      path: instance.basePath + req.url,
      headers: upstreamRequestHeaders(req, fwd, opts, instance),
      agent: instance.agent,
    });
    current = proxyReq;
    proxyReq.setTimeout(opts.timeoutMs, () => {
      timedOut = true;
      proxyReq.destroy();
    });

    const startBody = () => {
      if (bodyStarted) return;
      bodyStarted = true;
      if (body === 'chunked')
        streamCounted(req, proxyReq, opts.bodyLimit, () => {
          // The upstream answered before the body passed the limit: too late for a 413, so cut the upstream
          // exchange instead of ending it with a truncated body.
          if (done) proxyReq.destroy();
          else {
            res.setHeader('connection', 'close');
            fail(ERRORS.payloadTooLarge());
          }
        });
      else req.pipe(proxyReq);
    };
    if (body === 'none') proxyReq.end();
    else
      proxyReq.on('socket', (socket) => {
        if (socket.connecting) socket.once('connect', startBody);
        else startBody();
      });

    proxyReq.on('response', (proxyRes) => {
      if (done) {
        proxyRes.resume();
        return;
      }
      done = true;
      streaming = true;
      copyResponseHeaders(proxyRes, res);
      res.writeHead(proxyRes.statusCode ?? 502);
      proxyRes.pipe(res);
      proxyRes.on('error', () => res.destroy());
    });

    proxyReq.on('error', (err: NodeJS.ErrnoException) => {
      if (done) {
        // The upstream died mid-answer: the client must see a broken response, not a short one.
        if (streaming && !res.writableFinished) res.destroy();
        return;
      }
      if (timedOut) {
        opts.onUpstreamError?.(pool, instance, 'timeout');
        fail(upstreamTimeout());
        return;
      }
      const unreachable = !bodyStarted && UNREACHABLE.has(err.code ?? '');
      opts.onUpstreamError?.(pool, instance, unreachable ? 'refused' : 'reset');
      if (unreachable) {
        if (index + 1 < instances.length) attempt(index + 1, resetRetried);
        else fail(upstreamUnavailable(503));
        return;
      }
      // A kept-alive socket the upstream closed just as we reused it: nothing reached the service.
      if (
        proxyReq.reusedSocket &&
        err.code === 'ECONNRESET' &&
        !resetRetried &&
        body === 'none' &&
        BODYLESS_RETRYABLE.has(req.method ?? '')
      ) {
        attempt(index, true);
        return;
      }
      fail(upstreamUnavailable(502));
    });
  };
  attempt(0, false);
}

/** Pipes a body of unknown length, giving up once it passes `limit` bytes. */
function streamCounted(req: IncomingMessage, to: ClientRequest, limit: number, onTooLarge: () => void): void {
  let seen = 0;
  const onData = (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > limit) {
      req.off('data', onData);
      req.unpipe();
      onTooLarge();
      req.resume();
      return;
    }
    if (!to.write(chunk)) req.pause();
  };
  to.on('drain', () => req.resume());
  req.on('data', onData);
  req.on('end', () => {
    if (seen <= limit) to.end();
  });
}
