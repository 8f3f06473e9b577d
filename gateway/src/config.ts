import { z } from 'zod';
import { boolFlag, commonEnv, loadConfig, port, productionRules } from '@mana/shared';

/** A comma-separated list of base URLs or origins, without trailing slashes. */
const urlList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim().replace(/\/+$/, ''))
        .filter(Boolean),
    );

/** A comma-separated list of upstream base URLs (round robin, failover on connection refused). */
const upstreamList = (fallback: string) => urlList(fallback).pipe(z.array(z.url({ protocol: /^https?$/ })).min(1, 'at least one URL'));

const BYTE_SIZE = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i;

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const configSchema = commonEnv
  .extend({
    /** Port the gateway listens on (0 = any free port, tests). */
    PORT: port(3001),
    /** Upstreams: each a comma-separated list of base URLs. */
    AUTH_SVC_URL: upstreamList('http://127.0.0.1:3101'),
    VAULT_SVC_URL: upstreamList('http://127.0.0.1:3102'),
    GDPR_SVC_URL: upstreamList('http://127.0.0.1:3103'),
    ADMIN_SVC_URL: upstreamList('http://127.0.0.1:3104'),
    CREDITS_SVC_URL: upstreamList('http://127.0.0.1:3105'),
    /** Browser origins allowed to call the API with credentials (comma-separated, exact match). */
    CORS_ORIGINS: urlList(''),
    /** Shared rate-limit store of every gateway instance (preferred). */
    REDIS_URL: z.string().min(1).optional(),
    /** PostgreSQL for the rate-limit store when REDIS_URL is unset (falls back to DATABASE_URL). */
    GATEWAY_DATABASE_URL: z.string().min(1).optional(),
    /** Key prefix in the rate-limit store (tests use their own). */
    RATE_LIMIT_PREFIX: z.string().min(1).default('gw'),
    /** General limit per client IP: points per window. */
    RATE_LIMIT_POINTS: positiveInt(600),
    RATE_LIMIT_WINDOW_S: positiveInt(60),
    /** Tighter limit per client IP on sign-in, sign-up, magic-link, password reset and token paths. */
    RATE_LIMIT_AUTH_POINTS: positiveInt(20),
    RATE_LIMIT_AUTH_WINDOW_S: positiveInt(60),
    /** Limit per personal API key (its requests count here, not against their IP). */
    RATE_LIMIT_API_KEY_POINTS: positiveInt(600),
    RATE_LIMIT_API_KEY_WINDOW_S: positiveInt(60),
    /**
     * With Redis: the share of each limit an instance may count on its own between two answers from Redis, so a
     * request needs no round trip. The limit holds across instances to within instances × this share (0 = a round
     * trip per request, exact; limits under 1 / share are always exact).
     */
    RATE_LIMIT_LOCAL_SHARE: z.coerce.number().min(0).max(0.1).default(0.01),
    /** How often (ms) an instance sends its counts to Redis and learns the other instances'. */
    RATE_LIMIT_SYNC_MS: positiveInt(50),
    /** Exchanged API keys remembered (in-process LRU keyed by the key's SHA-256; 0 = exchange every request). */
    API_KEY_CACHE_SIZE: z.coerce.number().int().min(0).default(10_000),
    /** Largest request body the gateway forwards (413 above it); e.g. 100kb, 1mb. */
    BODY_LIMIT: z
      .string()
      .default('100kb')
      .refine((v) => BYTE_SIZE.test(v), 'a size such as 512, 100kb or 1mb'),
    /** Time an upstream may take to answer before the gateway gives up with 504. */
    UPSTREAM_TIMEOUT_MS: positiveInt(30_000),
    /** Verify bearer JWTs at the gateway. Switching it off is refused in production (benchmarks only). */
    GATEWAY_VERIFY_JWT: boolFlag(true),
    /** Express `trust proxy`: which peers may set X-Forwarded-* (client IP for rate limits). */
    TRUST_PROXY: z.string().default('loopback, linklocal, uniquelocal'),
    /** When set, GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>` (the gateway is public). */
    METRICS_TOKEN: z.string().min(16).optional(),
    /** Verified tokens remembered (bounded, never past `exp`). */
    JWT_CACHE_SIZE: z.coerce.number().int().min(0).default(10_000),
  })
  .superRefine((cfg, ctx) => {
    productionRules(cfg, ctx);
    if (cfg.NODE_ENV !== 'production') return;
    if (!cfg.GATEWAY_VERIFY_JWT) ctx.addIssue({ code: 'custom', path: ['GATEWAY_VERIFY_JWT'], message: 'cannot be false in production' });
    if (!cfg.REDIS_URL && !cfg.GATEWAY_DATABASE_URL && !cfg.DATABASE_URL)
      ctx.addIssue({
        code: 'custom',
        path: ['REDIS_URL'],
        message: 'a shared rate-limit store (REDIS_URL or GATEWAY_DATABASE_URL/DATABASE_URL) is required in production',
      });
  });

export type Config = z.output<typeof configSchema>;

export const loadGatewayConfig = (env: Record<string, string | undefined> = process.env): Config =>
  loadConfig('gateway', configSchema, env);

/** '100kb' | '1mb' | '512' → bytes. */
export function parseByteSize(value: string): number {
  const m = BYTE_SIZE.exec(value);
  if (!m) throw new Error(`invalid byte size: ${value}`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const factor = unit === 'gb' ? 1024 ** 3 : unit === 'mb' ? 1024 ** 2 : unit === 'kb' ? 1024 : 1;
  return Math.floor(Number(m[1]) * factor);
}
