import { Redis } from 'ioredis';
import pg from 'pg';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { ERRORS, type AppError } from '@mana/shared';
import type { RateTier } from './routes';
import { SharedCounter, type Verdict } from './shared-counter';

export interface RateLimitSettings {
  prefix: string;
  general: { points: number; windowS: number };
  auth: { points: number; windowS: number };
  /** Per personal API key (its requests count here instead of against their IP); defaults to `general`. */
  apiKey?: { points: number; windowS: number };
  /**
   * Redis only: the share of a bucket's limit each instance may count on its own between two answers from Redis
   * (0 = one round trip per request), and how often it sends its counts (see SharedCounter).
   */
  sync?: { localShare: number; syncMs: number };
}

/** The buckets: the route tiers per client IP, plus one per API key. */
type Bucket = RateTier | 'apiKey';

export interface RateLimitStoreConfig {
  redisUrl?: string;
  databaseUrl?: string;
  /** Called for every request the in-memory fallback counted because the shared store failed (a metric). */
  onFallback?: () => void;
}

/** How long after the last fallback a Postgres store still counts as down (Redis reports its own state). */
const DOWN_FOR_MS = 10_000;

/**
 * Counts requests per client IP in a store every gateway instance shares, so N instances do not
 * multiply the limit by N. Redis first, then PostgreSQL; process memory only outside production.
 */
export interface RateLimiter {
  readonly store: 'redis' | 'postgres' | 'memory';
  /**
   * An AppError (429) to answer with, or undefined to go on: at once when this instance can decide (the common case
   * with Redis, see SharedCounter), else as a promise.
   */
  check(ip: string, tier: RateTier): MaybePromise<AppError | undefined>;
  /** The bucket of one API key (by key id). */
  checkKey(keyId: string): MaybePromise<AppError | undefined>;
  /**
   * The `/readyz` check: resolves `'degraded'` while the shared store is unreachable — the instance keeps
   * serving and counts in its own memory meanwhile (fail open to a local limiter, see the README), so a
   * Redis outage must not take every gateway out of the load balancer.
   */
  ping(): Promise<void | 'degraded'>;
  /** Whether the shared store is reachable now (memory: always). */
  storeUp(): boolean;
  close(): Promise<void>;
}

/** The in-memory stand-in used while the shared store fails; says so in the log (at most every 10 s). */
class InsuranceLimiter extends RateLimiterMemory {
  private lastWarned = 0;
  constructor(
    private readonly log: Logger,
    opts: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly onUse: () => void,
  ) {
    super(opts);
  }
  override consume(...args: Parameters<RateLimiterMemory['consume']>): Promise<RateLimiterRes> {
    this.onUse();
    const now = Date.now();
    if (now - this.lastWarned > 10_000) {
      this.lastWarned = now;
      this.log.warn('rate-limit store failed: counting in this instance only until it is back');
    }
    return super.consume(...args);
  }
}

const SCHEMA = 'gateway';
const TABLE = 'rate_limits';

export type MaybePromise<T> = T | Promise<T>;

/** One bucket: the 429 to answer with, or undefined to go on (a promise when the store must be asked). */
type Consume = (key: string) => MaybePromise<AppError | undefined>;

const retryIn = (ms: number) => ERRORS.rateLimited(Math.max(1, Math.ceil(ms / 1000)));

export async function createRateLimiter(settings: RateLimitSettings, store: RateLimitStoreConfig, logger: Logger): Promise<RateLimiter> {
  const consume = async (limiter: RateLimiterAbstract, key: string): Promise<AppError | undefined> => {
    try {
      await limiter.consume(key);
      return undefined;
    } catch (err) {
      if (err instanceof RateLimiterRes) return retryIn(err.msBeforeNext);
      // The store and its insurance both failed: fail open, but say so.
      logger.error({ err: (err as Error).message }, 'rate limiter failed');
      return undefined;
    }
  };
  const library =
    (limiter: RateLimiterAbstract): Consume =>
    (key) =>
      consume(limiter, key);
  let lastFallbackAt = 0;
  const fellBack = () => {
    lastFallbackAt = Date.now();
    store.onFallback?.();
  };
  const options = (tier: Bucket) => {
    const s = settings[tier] ?? settings.general;
    return {
      keyPrefix: `${settings.prefix}:${tier}`,
      points: s.points,
      duration: s.windowS,
      // When the shared store fails, count in memory rather than refusing or waving everyone through.
      insuranceLimiter: new InsuranceLimiter(
        logger,
        {
          keyPrefix: `${settings.prefix}:${tier}:ins`,
          points: s.points,
          duration: s.windowS,
        },
        fellBack,
      ),
    };
  };

  let buckets: Record<Bucket, Consume>;
  let kind: RateLimiter['store'];
  let ping: () => Promise<void>;
  let storeUp: () => boolean = () => Date.now() - lastFallbackAt > DOWN_FOR_MS;
  let close: () => Promise<void>;

  if (store.redisUrl) {
    const redis = new Redis(store.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
    redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis error'));
    await redis.connect().catch((err: Error) => logger.warn({ err: err.message }, 'redis not reachable yet'));
    const sync = settings.sync ?? { localShare: 0, syncMs: 50 };
    const syncFailed = (err: Error) => logger.warn({ err: err.message }, 'rate-limit counts not sent to Redis');
    const shared = (tier: Bucket): Consume => {
      const { keyPrefix, points, duration, insuranceLimiter } = options(tier);
      const counter = new SharedCounter(
        redis,
        { keyPrefix, points, windowMs: duration * 1000, localHits: Math.floor(points * sync.localShare), syncMs: sync.syncMs },
        syncFailed,
      );
      counters.push(counter);
      const answer = (verdict: Verdict) => (verdict === undefined ? undefined : retryIn(verdict));
      return (key) => {
        // While Redis is away, count in memory at once rather than trying it on every request.
        if (redis.status !== 'ready') return consume(insuranceLimiter, key);
        // No promise when this instance decides alone: most requests pay no microtask here.
        const verdict = counter.hit(key);
        if (verdict instanceof Promise) return verdict.then(answer, () => consume(insuranceLimiter, key));
        return answer(verdict);
      };
    };
    const counters: SharedCounter[] = [];
    buckets = { general: shared('general'), auth: shared('auth'), apiKey: shared('apiKey') };
    kind = 'redis';
    ping = async () => {
      await redis.ping();
    };
    storeUp = () => redis.status === 'ready';
    close = async () => {
      await Promise.all(counters.map((c) => c.close()));
      redis.disconnect();
    };
  } else if (store.databaseUrl) {
    const pool = new pg.Pool({ connectionString: store.databaseUrl, max: 10, application_name: 'gateway' });
    pool.on('error', (err) => logger.warn({ err: err.message }, 'rate-limit pool error'));
    try {
      await pool.query(`create schema if not exists ${SCHEMA}`);
    } catch (err) {
      // Two instances creating the schema at once: the loser sees a unique violation, which is fine.
      if ((err as { code?: string }).code !== '23505') throw err;
    }
    const pgOptions = (tier: Bucket) => ({
      storeClient: pool,
      storeType: 'pool',
      schemaName: SCHEMA,
      tableName: TABLE,
      clearExpiredByTimeout: true,
      ...options(tier),
    });
    // The first limiter creates the table (its callback says when); the second reuses it.
    await new Promise<void>((resolve, reject) => {
      const general = new RateLimiterPostgres({ ...pgOptions('general'), tableCreated: false }, (err?: unknown) =>
        err ? reject(err instanceof Error ? err : new Error('rate-limit table setup failed', { cause: err })) : resolve(),
      );
      buckets = {
        general: library(general),
        auth: library(new RateLimiterPostgres({ ...pgOptions('auth'), tableCreated: true })),
        apiKey: library(new RateLimiterPostgres({ ...pgOptions('apiKey'), tableCreated: true })),
      };
    });
    kind = 'postgres';
    ping = async () => {
      await pool.query('select 1');
    };
    close = () => pool.end();
  } else {
    logger.warn(
      'RATE LIMITS ARE COUNTED IN PROCESS MEMORY: every gateway instance counts on its own. Set REDIS_URL (or DATABASE_URL) for a shared store; production refuses this.',
    );
    buckets = {
      general: library(new RateLimiterMemory(options('general'))),
      auth: library(new RateLimiterMemory(options('auth'))),
      apiKey: library(new RateLimiterMemory(options('apiKey'))),
    };
    kind = 'memory';
    ping = async () => undefined;
    close = async () => undefined;
  }

  return {
    store: kind,
    check(ip, tier) {
      if (tier === 'general') return buckets.general(ip);
      const general = buckets.general(ip);
      const auth = buckets.auth(ip);
      if (general instanceof Promise || auth instanceof Promise) return Promise.all([general, auth]).then(([g, a]) => a ?? g);
      return auth ?? general;
    },
    checkKey: (keyId) => buckets.apiKey(keyId),
    async ping() {
      if (kind === 'memory') return;
      try {
        await ping();
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'rate-limit store unreachable: counting in this instance');
        return 'degraded';
      }
    },
    storeUp: () => kind === 'memory' || storeUp(),
    close,
  };
}
