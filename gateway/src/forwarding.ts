import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { AppError, errorBody, toAppError } from '@mana/shared';
import type { Logger } from 'pino';

/** Express's compiled `trust proxy` function: may the hop at `addr` (distance `i`) be believed? */
export type TrustFn = (addr: string, i: number) => boolean;

function first(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const comma = v.indexOf(',');
  return (comma === -1 ? v : v.slice(0, comma)).trim() || undefined;
}

const PEER_TRUSTED = Symbol('peer trusted');

/**
 * Whether the direct peer may tell us the client chain (`trust(peer, 0)`): the same for every request of a
 * connection, so it is decided once per connection (parsing the address on each request was a visible share of the
 * gateway's allocations, docs/BENCHMARKS.md).
 */
export function peerTrusted(req: IncomingMessage, trust: TrustFn): boolean {
  const socket = req.socket as Socket & { [PEER_TRUSTED]?: boolean };
  return (socket[PEER_TRUSTED] ??= trust(socket.remoteAddress ?? '', 0));
}

/** The client address, walking X-Forwarded-For outward only through trusted proxies (as Express's req.ip). */
export function clientIp(req: IncomingMessage, trust: TrustFn): string {
  const peer = req.socket.remoteAddress ?? '';
  const xff = req.headers['x-forwarded-for'];
  if (!xff || !peerTrusted(req, trust)) return peer;
  const chain = (Array.isArray(xff) ? xff.join(',') : xff).split(',');
  let ip = peer;
  for (let i = chain.length - 1, hop = 1; i >= 0; i--, hop++) {
    const next = chain[i].trim();
    if (!next) break;
    ip = next;
    if (!trust(next, hop)) break;
  }
  return ip;
}

/** The scheme the client used (as Express's req.protocol). */
export function forwardedProto(req: IncomingMessage, trust: TrustFn): string {
  const own = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  if (!peerTrusted(req, trust)) return own;
  return first(req.headers['x-forwarded-proto']) ?? own;
}

/** The host the client asked for (as Express's req.host). */
export function forwardedHost(req: IncomingMessage, trust: TrustFn): string {
  const fwd = peerTrusted(req, trust) ? first(req.headers['x-forwarded-host']) : undefined;
  return fwd ?? req.headers.host ?? '';
}

const HELD = Symbol('held headers');
type Holding = ServerResponse & { [HELD]?: string[] };

/** Keeps the headers every answer carries (name, value, name, value…) until the answer is written. */
export function holdHeaders(res: ServerResponse, headers: string[]): void {
  (res as Holding)[HELD] = headers;
}

/** The held headers, handed over once (to be written with the answer). */
export function takeHeldHeaders(res: ServerResponse): string[] | undefined {
  const held = (res as Holding)[HELD];
  (res as Holding)[HELD] = undefined;
  return held;
}

/** Sets the held headers on the response, for an answer written with setHeader. */
export function applyHeldHeaders(res: ServerResponse): void {
  const held = takeHeldHeaders(res);
  if (held) for (let i = 0; i < held.length; i += 2) res.setHeader(held[i], held[i + 1]);
}

/** The JSON error body every answer of the project uses, without Express. */
export function sendError(res: ServerResponse, err: unknown, requestId: string | undefined, log?: () => Logger): void {
  const appError = toAppError(err);
  if (appError.status >= 500 && !(err instanceof AppError && err.expose)) log?.().error({ err }, 'request failed');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  applyHeldHeaders(res);
  if (appError.headers) for (const [k, v] of Object.entries(appError.headers)) res.setHeader(k, v);
  const body = JSON.stringify(errorBody(appError, requestId));
  res.statusCode = appError.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
