import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
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

function upstreamRequestHeaders(req: IncomingMessage, fwd: Forwarded, opts: ProxyOptions, instance: UpstreamInstance): IncomingHttpHeaders {
  const listed = connectionListed(req.headers.connection);
  const out: IncomingHttpHeaders = {};
  const src = req.headers;
  for (const key in src) {
    if (HOP_BY_HOP.has(key) || listed?.has(key)) continue;
    // Expect: Node's server answered 100-continue to the client already (and undici does not send it).
    if (key === 'host' || key === 'expect' || key.startsWith('x-forwarded-')) continue;
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

/** The upstream's response headers (undici's raw pairs), repeated fields combined (Set-Cookie kept apart). */
function responseHeaders(raw: Buffer[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i].toString('latin1').toLowerCase();
    const value = raw[i + 1].toString('latin1');
    const seen = headers[key];
    if (seen === undefined) headers[key] = value;
    else if (key === 'set-cookie') headers[key] = Array.isArray(seen) ? [...seen, value] : [seen, value];
    else headers[key] = `${String(seen)}, ${value}`;
  }
  return headers;
}

function copyResponseHeaders(raw: Buffer[], res: ServerResponse): void {
  const headers = responseHeaders(raw);
  const listed = connectionListed(headers.connection);
  for (const key in headers) {
    if (HOP_BY_HOP.has(key) || listed?.has(key)) continue;
    // CORS is the gateway's decision, not the upstream's.
    if (key.startsWith('access-control-')) continue;
    const value = headers[key];
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

/** A chunked body went past the limit while being sent upstream. */
class BodyTooLarge extends Error {}

/** Timeouts of undici: connecting, waiting for the response headers, an idle response body. */
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/** The connection ended under a request: a kept-alive socket the upstream closed as we reused it, or a crash. */
const RESETS = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

const errorCode = (err: Error & { code?: string }) => err.code ?? (err.cause as { code?: string } | undefined)?.code ?? '';

/**
 * Streams the request to one instance of `pool`, and the answer back (undici's dispatcher: the response streams
 * with backpressure). The body is only read once the upstream connection is up (undici starts writing it then), so
 * a refused connection can move on to the next instance with the body still unread.
 */
export function proxyRequest(req: IncomingMessage, res: ServerResponse, pool: UpstreamPool, opts: ProxyOptions, fwd: Forwarded): void {
  const body = hasBody(req);
  if (body === 'sized' && Number(req.headers['content-length']) > opts.bodyLimit) {
    res.setHeader('connection', 'close');
    sendError(res, ERRORS.payloadTooLarge(), fwd.requestId);
    return;
  }
  // The client left while the gateway checked its request (rate limit, token, API key): nothing to fetch.
  if (res.destroyed) return;
  const instances = pool.order();
  /** Cuts the running upstream exchange (undici's abort of the current attempt, once it is connected). */
  let abort: ((err?: Error) => void) | undefined;
  /** Set once an answer (the upstream's or our error) is chosen. */
  let done = false;
  let streaming = false;
  let clientGone = false;
  /**
   * A client that stops reading the answer: the exchange is cut once it made no progress for `timeoutMs` (undici's
   * body timeout does not run while the answer is paused for backpressure), as node:http's socket timeout did.
   */
  let stalled: NodeJS.Timeout | undefined;
  let onDrain: (() => void) | undefined;
  const settle = () => {
    clearTimeout(stalled);
    if (onDrain) res.off('drain', onDrain);
  };
  res.on('close', () => {
    // The client went away: stop the upstream work it asked for.
    if (res.writableFinished) return;
    clientGone = true;
    abort?.();
  });

  const fail = (err: AppError) => {
    if (done) return;
    done = true;
    abort?.();
    sendError(res, err, fwd.requestId);
  };

  const attempt = (index: number, resetRetried: boolean) => {
    const instance = instances[index];
    let connected = false;
    abort = undefined;
    // Waiting for a connection (all of the instance's connections busy) is bounded like the exchange itself; a request
    // still queued then is cut when it gets one (onConnect sees `done`).
    const waiting = setTimeout(() => {
      if (connected || done) return;
      opts.onUpstreamError?.(pool, instance, 'timeout');
      fail(upstreamTimeout());
    }, opts.timeoutMs);
    instance.pool.dispatch(
      {
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        path: instance.basePath + (req.url ?? '/'),
        headers: upstreamRequestHeaders(req, fwd, opts, instance),
        // undici takes an async iterable as a body (its types name only streams and buffers).
        body: body === 'none' ? null : body === 'chunked' ? (countedBody(req, opts.bodyLimit) as unknown as Readable) : req,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      },
      {
        onConnect(cut) {
          clearTimeout(waiting);
          connected = true;
          abort = cut;
          if (clientGone || done) cut();
        },
        onHeaders(status, raw, resume) {
          // An interim answer (102, 103): the final one follows.
          if (status < 200) return true;
          if (done) {
            abort?.();
            return false;
          }
          done = true;
          streaming = true;
          copyResponseHeaders(raw, res);
          res.writeHead(status);
          onDrain = () => {
            clearTimeout(stalled);
            stalled = undefined;
            resume();
          };
          res.on('drain', onDrain);
          return true;
        },
        onData(chunk) {
          if (res.destroyed) {
            abort?.();
            return false;
          }
          if (res.write(chunk)) return true;
          stalled ??= setTimeout(() => {
            abort?.();
            res.destroy();
          }, opts.timeoutMs);
          return false;
        },
        onComplete() {
          settle();
          res.end();
        },
        onError(err: Error & { code?: string }) {
          clearTimeout(waiting);
          settle();
          if (done) {
            // The upstream died mid-answer: the client must see a broken response, not a short one.
            if (streaming && !res.writableFinished) res.destroy();
            return;
          }
          if (clientGone) {
            done = true;
            return;
          }
          if (err instanceof BodyTooLarge) {
            res.setHeader('connection', 'close');
            fail(ERRORS.payloadTooLarge());
            return;
          }
          const code = errorCode(err);
          if (TIMEOUTS.has(code)) {
            opts.onUpstreamError?.(pool, instance, 'timeout');
            fail(upstreamTimeout());
            return;
          }
          const unreachable = !connected && UNREACHABLE.has(code);
          opts.onUpstreamError?.(pool, instance, unreachable ? 'refused' : 'reset');
          if (unreachable) {
            if (index + 1 < instances.length) attempt(index + 1, resetRetried);
            else fail(upstreamUnavailable(503));
            return;
          }
          // A kept-alive connection the upstream closed just as we reused it: a request without a body and with a
          // safe method is sent once more (RFC 9110 §9.2.2), on a fresh connection.
          if (RESETS.has(code) && !resetRetried && body === 'none' && BODYLESS_RETRYABLE.has(req.method ?? '')) {
            attempt(index, true);
            return;
          }
          fail(upstreamUnavailable(502));
        },
      },
    );
  };
  attempt(0, false);
}

/**
 * A body of unknown length as undici reads it, given up once it passes `limit` bytes: the rest of it is drained (not
 * destroyed, so the client's connection stays to receive the 413) and the upstream exchange is cut.
 */
async function* countedBody(req: IncomingMessage, limit: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    seen += chunk.length;
    if (seen > limit) {
      req.resume();
      throw new BodyTooLarge('request body over the limit');
    }
    yield chunk;
  }
}
