import type { Redis, Result } from 'ioredis';

/**
 * One Redis round trip for a batch of hits of one key: opens the fixed window on the first hit (the same key and
 * layout as rate-limiter-flexible's RateLimiterRedis, so both can count together during a rollout), adds the hits
 * and answers the window's total and its remaining milliseconds.
 */
const ADD_HITS = `
redis.call('set', KEYS[1], 0, 'PX', ARGV[2], 'NX')
local total = redis.call('incrby', KEYS[1], ARGV[1])
local ttl = redis.call('pttl', KEYS[1])
if ttl == -1 then
  redis.call('pexpire', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {total, ttl}
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rateLimitAddHits(key: string, hits: number, windowMs: number): Result<[number, number], Context>;
  }
}

export interface SharedCounterSettings {
  /** Redis key prefix; a key is `<prefix>:<key>`. */
  keyPrefix: string;
  /** Hits allowed per window. */
  points: number;
  windowMs: number;
  /** How many hits per key this instance may decide on its own between two answers from Redis (0: ask every time). */
  localHits: number;
  /** The waiting hits of every key are sent at least this often. */
  syncMs: number;
}

/** undefined: allowed; a number: refused, the window ends in that many milliseconds. */
export type Verdict = number | undefined;

/** What this instance knows about one key. */
interface Entry {
  /** The key's total in Redis at its last answer: every instance's hits sent until then. */
  total: number;
  /** When that window ends (Date.now() clock). */
  resetAt: number;
  /** Hits counted here that Redis has not answered for yet (waiting + being sent). */
  unconfirmed: number;
  /** Of those, hits not sent yet. */
  waiting: number;
}

/**
 * A fixed-window counter per key that every gateway instance shares through Redis, without a round trip per hit.
 *
 * Each instance keeps, per key, the total Redis last answered plus its own hits since. While that sum stays within
 * the limit and fewer than `localHits` of its hits are unconfirmed, a hit is allowed here; the waiting hits of all keys
 * go to Redis in one pipeline every `syncMs` (or as soon as half the local budget is used), and each answer brings the
 * total of every instance back. A key's first hit, a hit after its window ended, and a hit beyond the local budget
 * wait for Redis, which then decides exactly as a per-request counter would. A key this instance already sees over
 * the limit is refused without asking and without being counted (within a window counts only grow).
 *
 * The error: an instance decides at most `localHits` hits without Redis having confirmed them, so the hits allowed per
 * key and window exceed the limit by at most instances × `localHits` (and never when `localHits` is 0).
 */
export class SharedCounter {
  private readonly entries = new Map<string, Entry>();
  private readonly due = new Set<string>();
  private flushQueued = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly settings: SharedCounterSettings,
    /** Called when a batch could not be sent (Redis down): its keys are forgotten and ask Redis again. */
    private readonly onSyncError: (err: Error) => void,
  ) {
    redis.defineCommand('rateLimitAddHits', { numberOfKeys: 1, lua: ADD_HITS });
    this.timer = setInterval(() => this.tick(), settings.syncMs);
    this.timer.unref();
  }

  /** Counts one hit of `key`; answers at once when this instance can decide, else after a round trip to Redis. */
  hit(key: string): Verdict | Promise<Verdict> {
    const now = Date.now();
    const e = this.entries.get(key);
    if (e && now < e.resetAt) {
      // Within a window counts only grow: a key this instance sees over the limit is refused without asking.
      if (e.total + e.unconfirmed + 1 > this.settings.points) return e.resetAt - now;
      if (e.unconfirmed < this.settings.localHits) {
        this.count(key, e);
        return undefined;
      }
    } else if (e) dropWaiting(e);
    return this.ask(key, e);
  }

  /** Sends what is waiting and stops the timer. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush([...this.entries.keys()]).catch(() => undefined);
  }

  private count(key: string, e: Entry): void {
    e.unconfirmed++;
    e.waiting++;
    if (e.waiting * 2 >= this.settings.localHits) this.flushSoon(key);
  }

  /** This hit waits for Redis's answer (with the key's other waiting hits). */
  private async ask(key: string, known: Entry | undefined): Promise<Verdict> {
    const e = known ?? { total: 0, resetAt: 0, unconfirmed: 0, waiting: 0 };
    if (!known) this.entries.set(key, e);
    e.unconfirmed++;
    e.waiting++;
    // Its own answer decides (e.total may already hold a later batch's when both answers came in one read).
    const total = (await this.flush([key])).get(key) ?? e.total;
    return total > this.settings.points ? Math.max(0, e.resetAt - Date.now()) : undefined;
  }

  private flushSoon(key: string): void {
    this.due.add(key);
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      const keys = [...this.due];
      this.due.clear();
      this.flush(keys).catch(this.onSyncError);
    });
  }

  private tick(): void {
    const now = Date.now();
    const keys: string[] = [];
    for (const [key, e] of this.entries) {
      if (now >= e.resetAt) {
        dropWaiting(e);
        if (e.unconfirmed === 0) this.entries.delete(key);
      } else if (e.waiting > 0) keys.push(key);
    }
    if (keys.length) this.flush(keys).catch(this.onSyncError);
  }

  /**
   * One pipeline: every waiting hit of `keys`; each answer updates that key's total and window. Resolves with the
   * totals Redis answered, by key.
   */
  private async flush(keys: string[]): Promise<Map<string, number>> {
    const pipeline = this.redis.pipeline();
    const sent: Array<[string, Entry, number]> = [];
    const totals = new Map<string, number>();
    for (const key of keys) {
      const e = this.entries.get(key);
      if (!e || e.waiting === 0) continue;
      sent.push([key, e, e.waiting]);
      pipeline.rateLimitAddHits(`${this.settings.keyPrefix}:${key}`, e.waiting, this.settings.windowMs);
      e.waiting = 0;
    }
    if (!sent.length) return totals;
    let answers: Array<[Error | null, unknown]> | null;
    try {
      answers = await pipeline.exec();
    } catch (err) {
      this.forget(keys);
      throw err;
    }
    const now = Date.now();
    let failed: Error | undefined;
    sent.forEach(([key, e, hits], i) => {
      e.unconfirmed -= hits;
      const [err, answer] = answers?.[i] ?? [new Error('Redis did not answer'), undefined];
      if (err) failed ??= err;
      else {
        const [total, ttl] = answer as [number, number];
        totals.set(key, total);
        e.total = total;
        e.resetAt = now + ttl;
      }
    });
    if (failed) {
      this.forget(keys);
      throw failed;
    }
    return totals;
  }

  /** Redis did not answer: the next hit of these keys asks again (and falls back while Redis is down). */
  private forget(keys: string[]): void {
    for (const key of keys) this.entries.delete(key);
  }
}

/** Hits allowed in a window that has ended no longer count: they must not land in the next one. */
function dropWaiting(e: Entry): void {
  e.unconfirmed -= e.waiting;
  e.waiting = 0;
}
