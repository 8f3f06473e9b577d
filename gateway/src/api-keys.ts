import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { ERRORS, apiKeyExchangeSchema, isApiKey, isWellFormedApiKey, type ApiKeyScope } from '@mana/shared';

/** What the gateway remembers of one exchanged key (keyed by the key's SHA-256, never the key). */
export interface ExchangedKey {
  /** The access token forwarded upstream in place of the key. */
  token: string;
  keyId: string;
  /** `ak_<key id>`: revoking it (session.revoked.v1) ends the key. */
  sid: string;
  scopes: ReadonlySet<ApiKeyScope>;
  /** When to exchange again: shortly before the token's exp. */
  renewAtMs: number;
  /** Client IPs this entry was exchanged for: another one is exchanged again, so auth-svc sees the new IP. */
  ips: Set<string>;
}

export interface ApiKeyExchangerOptions {
  authUrls: readonly string[];
  serviceKey: string;
  logger: Logger;
  /** Exchanged keys remembered (LRU). */
  cacheSize?: number;
  /** Exchange again this long before the token expires. */
  renewBeforeMs?: number;
  timeoutMs?: number;
}

const MAX_IPS_PER_ENTRY = 64;

/**
 * The personal API key of a request, if it carries one: `X-API-Key: mana_…` or `Authorization: Bearer mana_…`
 * (X-API-Key wins when both are sent; the forwarded request then carries only the exchanged token).
 */
export function apiKeyOf(req: IncomingMessage): string | undefined {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string' && header.length > 0) return header.trim();
  const auth = req.headers.authorization;
  if (auth === undefined || auth.length < 12 || auth.charCodeAt(6) !== 32 /* ' ' */) return undefined;
  if (auth.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  const token = auth.slice(7).trim();
  return isApiKey(token) ? token : undefined;
}

/**
 * Removes a personal API key from a request that is forwarded without being exchanged (public and
 * service routes): the key never reaches a service, whichever header it came in. A JWT stays.
 */
export function dropApiKey(req: IncomingMessage): void {
  delete req.headers['x-api-key'];
  const auth = req.headers.authorization;
  if (auth !== undefined && /^bearer\s+mana_/i.test(auth.trim())) delete req.headers.authorization;
}

/**
 * Trades personal API keys for short-lived access tokens at auth-svc's internal API and remembers them
 * (in-process LRU keyed by SHA-256 of the key) until shortly before their exp. Concurrent requests with
 * the same key share one exchange.
 */
export class ApiKeyExchanger {
  private readonly cache = new Map<string, ExchangedKey>();
  private readonly inFlight = new Map<string, Promise<ExchangedKey>>();
  private readonly cacheSize: number;
  private readonly renewBeforeMs: number;
  private next = 0;

  constructor(private readonly opts: ApiKeyExchangerOptions) {
    this.cacheSize = opts.cacheSize ?? 10_000;
    this.renewBeforeMs = opts.renewBeforeMs ?? 30_000;
  }

  static digest(key: string): string {
    return createHash('sha256').update(key).digest('base64url');
  }

  /** The remembered exchange of this key for this client IP, while its token is fresh. */
  cached(digest: string, ip: string, now = Date.now()): ExchangedKey | undefined {
    const hit = this.cache.get(digest);
    if (!hit || hit.renewAtMs <= now || !hit.ips.has(ip)) return undefined;
    // Most recently used goes last (Map order = eviction order).
    this.cache.delete(digest);
    this.cache.set(digest, hit);
    return hit;
  }

  /** Forgets an exchange (its key was revoked). */
  drop(digest: string): void {
    this.cache.delete(digest);
  }

  get size(): number {
    return this.cache.size;
  }

  /** Exchanges the key at auth-svc (401 TOKEN_INVALID for a wrong, deleted or expired key). */
  exchange(key: string, digest: string, client: { ip: string; userAgent?: string }): Promise<ExchangedKey> {
    if (!isWellFormedApiKey(key)) return Promise.reject(ERRORS.tokenInvalid());
    const flightKey = `${digest} ${client.ip}`;
    let flight = this.inFlight.get(flightKey);
    if (!flight) {
      flight = this.exchangeOnce(key, digest, client).finally(() => this.inFlight.delete(flightKey));
      this.inFlight.set(flightKey, flight);
    }
    return flight;
  }

  private async exchangeOnce(key: string, digest: string, client: { ip: string; userAgent?: string }): Promise<ExchangedKey> {
    const body = JSON.stringify({ key, ipAddress: client.ip.slice(0, 64), userAgent: client.userAgent?.slice(0, 1024) });
    const urls = this.opts.authUrls;
    let lastErr: unknown;
    for (let i = 0; i < urls.length; i++) {
      const base = urls[(this.next + i) % urls.length];
      let res: Response;
      try {
        res = await fetch(`${base}/api/v1/internal/api-keys/exchange`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json', 'x-service-key': this.opts.serviceKey },
          body,
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5_000),
        });
      } catch (err) {
        lastErr = err;
        continue;
      }
      if (res.status >= 500) {
        lastErr = new Error(`auth-svc answered ${res.status}`);
        await res.body?.cancel();
        continue;
      }
      this.next = (this.next + i + 1) % urls.length;
      if (res.status !== 200) {
        await res.body?.cancel();
        throw ERRORS.tokenInvalid();
      }
      const parsed = apiKeyExchangeSchema.safeParse(await res.json());
      if (!parsed.success) {
        lastErr = new Error('auth-svc answered an unexpected exchange');
        break;
      }
      return this.remember(digest, client.ip, parsed.data);
    }
    this.opts.logger.warn({ err: (lastErr as Error | undefined)?.message }, 'API key exchange failed');
    throw ERRORS.unavailable('API keys cannot be checked right now');
  }

  private remember(
    digest: string,
    ip: string,
    x: { accessToken: string; expiresAt: string; keyId: string; sessionId: string; scopes: ApiKeyScope[] },
  ) {
    const previous = this.cache.get(digest);
    const ips = previous && previous.keyId === x.keyId && previous.ips.size < MAX_IPS_PER_ENTRY ? previous.ips : new Set<string>();
    ips.add(ip);
    const entry: ExchangedKey = {
      token: x.accessToken,
      keyId: x.keyId,
      sid: x.sessionId,
      scopes: new Set(x.scopes),
      renewAtMs: Date.parse(x.expiresAt) - this.renewBeforeMs,
      ips,
    };
    this.cache.delete(digest);
    if (this.cacheSize > 0) {
      if (this.cache.size >= this.cacheSize) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
      this.cache.set(digest, entry);
    }
    return entry;
  }
}
