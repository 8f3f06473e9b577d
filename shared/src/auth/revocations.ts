import { z } from 'zod';
import type { Logger } from 'pino';
import type { EventBus } from '../bus/types';

/**
 * Sessions ended before their last access token expired (logout, password change, admin action,
 * erasure). Every gateway instance holds all of them: sid → epoch ms after which the entry is moot
 * because no token of that session can still be valid.
 */
export class RevokedSessions {
  private readonly entries = new Map<string, number>();
  private sweeper?: NodeJS.Timeout;

  add(sessionId: string, expiresAtMs: number, now = Date.now()): void {
    if (expiresAtMs <= now) return;
    const known = this.entries.get(sessionId);
    if (known === undefined || known < expiresAtMs) this.entries.set(sessionId, expiresAtMs);
  }

  has(sessionId: string, now = Date.now()): boolean {
    const until = this.entries.get(sessionId);
    if (until === undefined) return false;
    if (until > now) return true;
    this.entries.delete(sessionId);
    return false;
  }

  get size(): number {
    return this.entries.size;
  }

  sweep(now = Date.now()): void {
    for (const [sid, until] of this.entries) if (until <= now) this.entries.delete(sid);
  }

  startSweeping(everyMs = 60_000): void {
    this.sweeper ??= setInterval(() => this.sweep(), everyMs);
    this.sweeper.unref();
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}

const revokedListSchema = z.object({
  revocations: z.array(
    z.object({
      sessionId: z.string().min(1),
      userId: z.string().optional(),
      expiresAt: z.iso.datetime({ offset: true }),
    }),
  ),
});

export interface RevocationLoaderOptions {
  /** auth-svc base URLs (any one answering is enough). */
  authUrls: readonly string[];
  serviceKey: string;
  denylist: RevokedSessions;
  logger: Logger;
  timeoutMs?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
}

/**
 * Loads the revocations still in force from auth-svc's internal API — on start and after every
 * bus reconnect (events published while we were away are not replayed to a per-instance queue).
 * Retries in the background until it succeeds; never blocks startup, but `/readyz` answers 503 until
 * the first load succeeded (see `assertLoaded`).
 */
export class RevocationLoader {
  private running?: Promise<void>;
  private again = false;
  private retryTimer?: NodeJS.Timeout;
  private delay: number;
  private stopped = false;
  /** Times a full list was loaded (tests and /readyz details). */
  loads = 0;

  /**
   * Readiness check (fail closed): rejects until a full list has been loaded once, so a replica that
   * does not know the revocations in force yet is taken out of rotation instead of accepting tokens
   * of ended sessions. Reloads after a reconnect add to the list already held: once loaded, it stays ready.
   */
  assertLoaded(): Promise<void> {
    return this.loads > 0 ? Promise.resolve() : Promise.reject(new Error('revocation list not loaded yet'));
  }

  constructor(private readonly opts: RevocationLoaderOptions) {
    this.delay = opts.retryMinMs ?? 250;
  }

  /** Starts a load (or queues one more if one is running). Resolves when this round ends. */
  load(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.load();
      }
    });
    return this.running;
  }

  private async run(): Promise<void> {
    try {
      const count = await this.fetchOnce();
      this.loads++;
      this.delay = this.opts.retryMinMs ?? 250;
      this.opts.logger.info({ count }, 'revoked sessions loaded');
    } catch (err) {
      if (this.stopped) return;
      this.opts.logger.warn({ err: (err as Error).message, retryInMs: this.delay }, 'loading revoked sessions failed, will retry');
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.load();
      }, this.delay);
      this.retryTimer.unref();
      this.delay = Math.min(this.delay * 2, this.opts.retryMaxMs ?? 10_000);
    }
  }

  private async fetchOnce(): Promise<number> {
    let lastErr: unknown;
    for (const base of this.opts.authUrls) {
      try {
        const res = await fetch(`${base}/api/v1/internal/sessions/revoked`, {
          headers: { 'x-service-key': this.opts.serviceKey, accept: 'application/json' },
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5_000),
        });
        if (!res.ok) throw new Error(`auth-svc answered ${res.status}`);
        const parsed = revokedListSchema.safeParse(await res.json());
        if (!parsed.success) throw new Error('auth-svc answered an unexpected revocation list');
        const now = Date.now();
        for (const r of parsed.data.revocations) this.opts.denylist.add(r.sessionId, Date.parse(r.expiresAt), now);
        return parsed.data.revocations.length;
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr instanceof Error ? lastErr : new Error('no auth-svc instance answered');
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }
}

export interface RevocationTracking {
  denylist: RevokedSessions;
  loader: RevocationLoader;
  stop: () => void;
}

/**
 * Keeps this process's denylist of ended sessions: every `session.revoked.v1` (a per-instance queue,
 * so every instance hears every revocation) plus the list still in force loaded from auth-svc — now
 * and after every bus reconnect, since a per-instance queue misses what was published while away.
 * Call after `bus.start()`.
 */
export async function trackRevocations(opts: {
  bus: EventBus;
  /** Logical name of the per-instance queue, e.g. `gateway.revocations`. */
  queue: string;
  authUrls: readonly string[];
  serviceKey: string;
  logger: Logger;
}): Promise<RevocationTracking> {
  const denylist = new RevokedSessions();
  denylist.startSweeping();
  const loader = new RevocationLoader({ authUrls: opts.authUrls, serviceKey: opts.serviceKey, denylist, logger: opts.logger });
  await opts.bus.subscribe({
    queue: opts.queue,
    bindings: ['session.revoked.v1'],
    perInstance: true,
    handler: async (event) => {
      if (event.type !== 'session.revoked.v1') return;
      denylist.add(event.data.sessionId, Date.parse(event.data.expiresAt));
    },
  });
  void loader.load();
  const onConnected = () => void loader.load();
  opts.bus.on('connected', onConnected);
  return {
    denylist,
    loader,
    stop: () => {
      opts.bus.off('connected', onConnected);
      loader.stop();
      denylist.stop();
    },
  };
}
