import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { AppError, ERRORS } from '@mana/shared';
import { sendError, takeHeldHeaders } from './forwarding';
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

/** The request's header lines for the upstream (name, value, name, value…). */
function upstreamRequestHeaders(req: IncomingMessage, fwd: Forwarded, opts: ProxyOptions, instance: UpstreamInstance): string[] {
  const listed = connectionListed(req.headers.connection);
  const out: string[] = [];
  const src = req.headers;
  for (const key in src) {
    if (HOP_BY_HOP.has(key) || listed?.has(key)) continue;
    // Expect: Node's server answered 100-continue to the client already (and undici does not send it).
    if (
      key === 'host' ||
      key === 'expect' ||
      (key.charCodeAt(0) === 120 /* x */ && (key === 'x-request-id' || key.startsWith('x-forwarded-')))
    )
      continue;
    const value = src[key];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(key, value);
    else for (const v of value) out.push(key, v);
  }
  const peer = req.socket.remoteAddress ?? '';
  const incoming = src['x-forwarded-for'];
  // A client's own X-Forwarded-For is kept only when it came through a proxy we trust.
  out.push(
    'x-forwarded-for',
    incoming && opts.trustPeer(peer) ? `${Array.isArray(incoming) ? incoming.join(', ') : incoming}, ${peer}` : peer,
    'x-forwarded-proto',
    fwd.proto,
    'x-forwarded-host',
    fwd.host,
    'x-request-id',
    fwd.requestId,
    'host',
    instance.port === 80 || instance.port === 443 ? instance.hostname : `${instance.hostname}:${instance.port}`,
  );
  return out;
}

/** The gateway's own header names (a fixed set), lower-cased once. */
const lowerCased = new Map<string, string>();
const lower = (name: string) => {
  let l = lowerCased.get(name);
  if (l === undefined) lowerCased.set(name, (l = name.toLowerCase()));
  return l;
};

/**
 * The answer's header lines (name, value, name, value…): the gateway's held headers (request id, security headers,
 * CORS) except those the upstream set itself — a service may choose its own (the hosted pages' CSP); `Vary` adds up —
 * then the upstream's (undici's raw pairs, repeated fields kept as their own lines) without hop-by-hop fields or CORS.
 */
export function answerHeaders(raw: Buffer[], held: readonly string[] | undefined): string[] {
  const n = raw.length >> 1;
  const names = new Array<string>(n);
  let connection: string | undefined;
  for (let i = 0; i < n; i++) {
    const name = raw[2 * i].toString('latin1').toLowerCase();
    names[i] = name;
    if (name === 'connection')
      connection = connection === undefined ? raw[2 * i + 1].toString('latin1') : `${connection}, ${raw[2 * i + 1].toString('latin1')}`;
  }
  const listed = connectionListed(connection);
  // The upstream fields that go out: hop-by-hop ones never cross the proxy, CORS is the gateway's decision.
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const name = names[i];
    if (HOP_BY_HOP.has(name) || listed?.has(name) || name.startsWith('access-control-')) names[i] = '';
    else kept++;
  }
  const out: string[] = [];
  if (held)
    for (let i = 0; i < held.length; i += 2) {
      const name = lower(held[i]);
      // An upstream field that goes out replaces the gateway's (not Vary, which adds up).
      if (kept > 0 && name !== 'vary' && names.includes(name)) continue;
      out.push(held[i], held[i + 1]);
    }
  for (let i = 0; i < n; i++) if (names[i] !== '') out.push(names[i], raw[2 * i + 1].toString('latin1'));
  return out;
}

/** Header lines as one value per field: Set-Cookie as a list, any other repeated field joined by commas. */
function combinedFields(lines: readonly string[]): Map<string, string | string[]> {
  const fields = new Map<string, string | string[]>();
  for (let i = 0; i < lines.length; i += 2) {
    const name = lines[i].toLowerCase();
    const seen = fields.get(name);
    if (seen === undefined) fields.set(name, lines[i + 1]);
    else if (name === 'set-cookie') fields.set(name, [...(Array.isArray(seen) ? seen : [seen]), lines[i + 1]]);
    else fields.set(name, `${String(seen)}, ${lines[i + 1]}`);
  }
  return fields;
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
  new ProxyExchange(req, res, pool, opts, fwd, body).attempt();
}

/**
 * One proxied exchange, as undici's dispatch handler (its methods, not a closure per callback: a proxied request
 * allocates a few objects, not a dozen functions).
 */
class ProxyExchange implements Dispatcher.DispatchHandlers {
  private readonly instances: readonly UpstreamInstance[];
  private index = 0;
  private resetRetried = false;
  private connected = false;
  /** Bounds the wait for a connection (all of the instance's connections busy) like the exchange itself. */
  private waiting: NodeJS.Timeout | undefined;
  /** Cuts the running upstream exchange (undici's abort of the current attempt, once it is connected). */
  private abort: ((err?: Error) => void) | undefined;
  /** Set once an answer (the upstream's or our error) is chosen. */
  private done = false;
  private streaming = false;
  private clientGone = false;
  /**
   * A client that stops reading the answer: the exchange is cut once it made no progress for `timeoutMs` (undici's
   * body timeout does not run while the answer is paused for backpressure), as node:http's socket timeout did.
   */
  private stalled: NodeJS.Timeout | undefined;
  private resume: (() => void) | undefined;
  private draining = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly pool: UpstreamPool,
    private readonly opts: ProxyOptions,
    private readonly fwd: Forwarded,
    private readonly body: 'none' | 'sized' | 'chunked',
  ) {
    this.instances = pool.order();
    res.on('close', this.onClose);
  }

  private readonly onClose = () => {
    // The client went away: stop the upstream work it asked for.
    if (this.res.writableFinished) return;
    this.clientGone = true;
    this.abort?.();
  };

  private readonly onDrain = () => {
    clearTimeout(this.stalled);
    this.stalled = undefined;
    this.resume?.();
  };

  private settle(): void {
    clearTimeout(this.stalled);
    if (this.draining) this.res.off('drain', this.onDrain);
  }

  private fail(err: AppError): void {
    if (this.done) return;
    this.done = true;
    this.abort?.();
    sendError(this.res, err, this.fwd.requestId);
  }

  attempt(): void {
    const { req, opts } = this;
    const instance = this.instances[this.index];
    this.connected = false;
    this.abort = undefined;
    // A request still queued when the wait ends is cut when it gets a connection (onConnect sees `done`).
    this.waiting = setTimeout(() => {
      if (this.connected || this.done) return;
      opts.onUpstreamError?.(this.pool, instance, 'timeout');
      this.fail(upstreamTimeout());
    }, opts.timeoutMs);
    const body = this.body;
    instance.pool.dispatch(
      {
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        path: instance.basePath + (req.url ?? '/'),
        headers: upstreamRequestHeaders(req, this.fwd, opts, instance),
        // undici takes an async iterable as a body (its types name only streams and buffers).
        body: body === 'none' ? null : body === 'chunked' ? (countedBody(req, opts.bodyLimit) as unknown as Readable) : req,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      },
      this,
    );
  }

  onConnect(cut: (err?: Error) => void): void {
    clearTimeout(this.waiting);
    this.connected = true;
    this.abort = cut;
    if (this.clientGone || this.done) cut();
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    // An interim answer (102, 103): the final one follows.
    if (status < 200) return true;
    if (this.done) {
      this.abort?.();
      return false;
    }
    this.done = true;
    this.streaming = true;
    const lines = answerHeaders(raw, takeHeldHeaders(this.res));
    if (this.res.getHeaderNames().length === 0) this.res.writeHead(status, lines);
    else {
      // A header set already (a drain's `Connection: close`): writeHead would set the lines one by one, the last of
      // a repeated field replacing the others, so repeated fields are combined first.
      for (const [name, value] of combinedFields(lines)) this.res.setHeader(name, value);
      this.res.writeHead(status);
    }
    this.resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    const res = this.res;
    if (res.destroyed) {
      this.abort?.();
      return false;
    }
    if (res.write(chunk)) return true;
    if (!this.draining) {
      this.draining = true;
      res.on('drain', this.onDrain);
    }
    this.stalled ??= setTimeout(() => {
      this.abort?.();
      res.destroy();
    }, this.opts.timeoutMs);
    return false;
  }

  onComplete(): void {
    this.settle();
    this.res.end();
  }

  onError(err: Error & { code?: string }): void {
    const { res, opts, pool } = this;
    clearTimeout(this.waiting);
    this.settle();
    if (this.done) {
      // The upstream died mid-answer: the client must see a broken response, not a short one.
      if (this.streaming && !res.writableFinished) res.destroy();
      return;
    }
    if (this.clientGone) {
      this.done = true;
      return;
    }
    if (err instanceof BodyTooLarge) {
      res.setHeader('connection', 'close');
      this.fail(ERRORS.payloadTooLarge());
      return;
    }
    const instance = this.instances[this.index];
    const code = errorCode(err);
    if (TIMEOUTS.has(code)) {
      opts.onUpstreamError?.(pool, instance, 'timeout');
      this.fail(upstreamTimeout());
      return;
    }
    const unreachable = !this.connected && UNREACHABLE.has(code);
    opts.onUpstreamError?.(pool, instance, unreachable ? 'refused' : 'reset');
    if (unreachable) {
      if (this.index + 1 < this.instances.length) {
        this.index++;
        this.attempt();
      } else this.fail(upstreamUnavailable(503));
      return;
    }
    // A kept-alive connection the upstream closed just as we reused it: a request without a body and with a
    // safe method is sent once more (RFC 9110 §9.2.2), on a fresh connection.
    if (RESETS.has(code) && !this.resetRetried && this.body === 'none' && BODYLESS_RETRYABLE.has(this.req.method ?? '')) {
      this.resetRetried = true;
      this.attempt();
      return;
    }
    this.fail(upstreamUnavailable(502));
  }
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
