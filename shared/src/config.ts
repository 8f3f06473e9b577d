import { z } from 'zod';

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly problems: string[];
  constructor(service: string, problems: string[]) {
    super(`${service}: invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Record<string, string | undefined>;

/** Empty strings in the environment mean "unset" (docker-compose and .env files produce them). */
function withoutEmpty(env: Env): Env {
  const out: Env = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

/**
 * Parses the environment once into a typed, deeply frozen object. On failure throws a ConfigError naming
 * every bad variable (never its value: it may be a secret).
 */
export function loadConfig<S extends z.ZodType>(service: string, schema: S, env: Env = process.env): Readonly<z.output<S>> {
  const clean = withoutEmpty(env);
  const result = schema.safeParse(clean);
  if (!result.success) {
    const issues = result.error.issues;
    // Whole-object rules (production refusing dev fallbacks) only run once every field parsed. Parse again
    // without the bad variables so their rule violations are reported in the same message.
    const bad = new Set(issues.map((i) => String(i.path[0] ?? '')));
    const again = schema.safeParse(Object.fromEntries(Object.entries(clean).filter(([k]) => !bad.has(k))));
    const extra = again.success ? [] : again.error.issues.filter((i) => !bad.has(String(i.path[0] ?? '')));
    const problems = [...issues, ...extra].map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(service, problems);
  }
  return deepFreeze(result.data);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/** Runs a service's main: a ConfigError prints one message and exits 1, without a stack trace. */
export async function runMain(main: () => Promise<unknown>): Promise<void> {
  try {
    await main();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  }
}

const DEV_SERVICE_KEY = 'dev-only-service-key-change-me-0000000000';

export const nodeEnv = z.enum(['development', 'test', 'production']).default('development');
export const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
export const boolFlag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
export const csv = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  );

/**
 * Variables every service reads. Services `.extend()` this with their own and finish with
 * `.superRefine(productionRules)` so production refuses development fallbacks.
 */
export const commonEnv = z.object({
  /** development | test | production */
  NODE_ENV: nodeEnv,
  /** pino level */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Public URL of the gateway; JWT `iss` and OIDC issuer. */
  BASE_URL: z.url().default('http://localhost:3001'),
  /** JWT `aud` every access token carries. */
  JWT_AUDIENCE: z.string().min(1).default('mana'),
  /** JWT `iss`; defaults to BASE_URL. */
  JWT_ISSUER: z.string().min(1).optional(),
  /** Where verifiers fetch auth-svc's JWKS (internal URL, never taken from a token). */
  AUTH_JWKS_URL: z.url().default('http://127.0.0.1:3101/api/auth/jwks'),
  /** Shared secret for service-to-service calls (X-Service-Key). */
  MANA_SERVICE_KEY: z.string().min(32, 'must be at least 32 characters').default(DEV_SERVICE_KEY),
  /**
   * More service keys this process accepts (comma-separated, never sent): rotating MANA_SERVICE_KEY without
   * downtime is three rollouts — accept the new key everywhere, send the new key (accepting the old), drop the
   * old (docs/OPERATIONS.md).
   */
  MANA_SERVICE_KEYS_ACCEPTED: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().min(32, 'every key must be at least 32 characters'))),
  /** PostgreSQL URL hosting every schema (a per-service URL may override it). */
  DATABASE_URL: z.string().min(1).optional(),
  /** RabbitMQ URL; unset = in-process bus (development only). */
  AMQP_URL: z.string().min(1).optional(),
  /** Name of the topic exchange (tests use their own). */
  AMQP_EXCHANGE: z.string().min(1).default('mana.events'),
  /** Prefix for queue names (tests use their own). */
  AMQP_QUEUE_PREFIX: z.string().default(''),
  /** Maximum JSON body size. */
  BODY_LIMIT: z.string().default('100kb'),
  /** Grace period for draining requests on shutdown (ms). */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /**
   * How long a relayed outbox row is kept for inspection (seconds). Events carry personal data (an
   * email, a user id), so the default 0 deletes a row as soon as the broker confirmed it.
   */
  OUTBOX_RETENTION_SECONDS: z.coerce.number().int().min(0).default(0),
  /**
   * Step-up authentication: sensitive operations (vault key changes, erasure, two-factor off, email change)
   * need the session to have signed in or re-authenticated within this many seconds.
   */
  REAUTH_MAX_AGE_SECONDS: z.coerce.number().int().positive().default(300),
  /**
   * GET /metrics wants `Authorization: Bearer <METRICS_TOKEN>` when set (at least 16 characters; openssl rand
   * -hex 24). Required in production: metrics name routes, queues and business volumes.
   */
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
});

export type CommonConfig = z.output<typeof commonEnv>;

export function productionRules(cfg: CommonConfig, ctx: z.RefinementCtx): void {
  if (cfg.NODE_ENV !== 'production') return;
  if (cfg.MANA_SERVICE_KEY === DEV_SERVICE_KEY)
    ctx.addIssue({ code: 'custom', path: ['MANA_SERVICE_KEY'], message: 'required in production' });
  if (!cfg.AMQP_URL) ctx.addIssue({ code: 'custom', path: ['AMQP_URL'], message: 'required in production' });
  if (!cfg.METRICS_TOKEN) ctx.addIssue({ code: 'custom', path: ['METRICS_TOKEN'], message: 'required in production' });
}

/**
 * A refinement refusing, in production, a secret still at its development fallback (the fallback lets `npm start` and
 * the tests run without one): `.superRefine(devSecretRefused('GDPR_SECRET', DEV_GDPR_SECRET))`.
 */
export function devSecretRefused<K extends string>(key: K, devValue: string) {
  return (cfg: { NODE_ENV: string } & { [k in K]: unknown }, ctx: z.RefinementCtx): void => {
    if (cfg.NODE_ENV === 'production' && cfg[key] === devValue)
      ctx.addIssue({ code: 'custom', path: [key], message: 'required in production' });
  };
}

export function isDevServiceKey(key: string): boolean {
  return key === DEV_SERVICE_KEY;
}

export function jwtIssuer(cfg: Pick<CommonConfig, 'JWT_ISSUER' | 'BASE_URL'>): string {
  return cfg.JWT_ISSUER ?? cfg.BASE_URL.replace(/\/$/, '');
}

/** True when the module at `metaUrl` is the process entry point (`tsx src/server.ts`). */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  const path = new URL(metaUrl).pathname;
  return path === entry || path.replace(/\.ts$/, '') === entry.replace(/\.ts$/, '');
}
