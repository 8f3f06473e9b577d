import { Redis } from 'ioredis';
import pg from 'pg';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { ERRORS, type AppError } from '@mana/shared';
import type { RateTier } from './routes';

export interface RateLimitSettings {
  prefix: string;
  general: { points: number; windowS: number };
  auth: { points: number; windowS: number };
  /** Per personal API key (its requests count here instead of against their IP); defaults to `general`. */
  apiKey?: { points: number; windowS: number };
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
  /** Resolves with an AppError (429) to answer with, or undefined to go on. */
  check(ip: string, tier: RateTier): Promise<AppError | undefined>;
  /** The bucket of one API key (by key id). */
  checkKey(keyId: string): Promise<AppError | undefined>;
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

function limitedBy(res: RateLimiterRes): AppError {
  return ERRORS.rateLimited(Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
}

export async function createRateLimiter(settings: RateLimitSettings, store: RateLimitStoreConfig, logger: Logger): Promise<RateLimiter> {
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

  let limiters: Record<Bucket, RateLimiterAbstract>;
  let kind: RateLimiter['store'];
  let ping: () => Promise<void>;
  let storeUp: () => boolean = () => Date.now() - lastFallbackAt > DOWN_FOR_MS;
  let close: () => Promise<void>;

  if (store.redisUrl) {
    const redis = new Redis(store.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
    redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis error'));
    await redis.connect().catch((err: Error) => logger.warn({ err: err.message }, 'redis not reachable yet'));
    limiters = {
      general: new RateLimiterRedis({ storeClient: redis, ...options('general') }),
      auth: new RateLimiterRedis({ storeClient: redis, ...options('auth') }),
      apiKey: new RateLimiterRedis({ storeClient: redis, ...options('apiKey') }),
    };
    kind = 'redis';
    ping = async () => {
      await redis.ping();
    };
    storeUp = () => redis.status === 'ready';
    close = async () => {
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
      limiters = {
        general: new RateLimiterPostgres({ ...pgOptions('general'), tableCreated: false }, (err?: unknown) =>
          err ? reject(err instanceof Error ? err : new Error('rate-limit table setup failed', { cause: err })) : resolve(),
        ),
        auth: new RateLimiterPostgres({ ...pgOptions('auth'), tableCreated: true }),
        apiKey: new RateLimiterPostgres({ ...pgOptions('apiKey'), tableCreated: true }),
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
    limiters = {
      general: new RateLimiterMemory(options('general')),
      auth: new RateLimiterMemory(options('auth')),
      apiKey: new RateLimiterMemory(options('apiKey')),
    };
    kind = 'memory';
    ping = async () => undefined;
    close = async () => undefined;
  }

  const consume = async (limiter: RateLimiterAbstract, ip: string): Promise<AppError | undefined> => {
    try {
      await limiter.consume(ip);
      return undefined;
    } catch (err) {
      if (err instanceof RateLimiterRes) return limitedBy(err);
      // The store and its insurance both failed: fail open, but say so.
      logger.error({ err: (err as Error).message }, 'rate limiter failed');
      return undefined;
    }
  };

  return {
    store: kind,
    async check(ip, tier) {
      if (tier === 'general') return consume(limiters.general, ip);
      const [general, auth] = await Promise.all([consume(limiters.general, ip), consume(limiters.auth, ip)]);
      return auth ?? general;
    },
    checkKey: (keyId) => consume(limiters.apiKey, keyId),
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
