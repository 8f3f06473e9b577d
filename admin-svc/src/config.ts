import { z } from 'zod';
import { commonEnv, csv, loadConfig, port, productionRules, devSecretRefused } from '@mana/shared';

const DEV_PSEUDONYM_SECRET = 'dev-only-admin-pseudonym-secret-change-me-00';

/** Another service's internal API: a comma list like the gateway's; admin-svc calls the first URL. */
const serviceUrl = (fallback: string) => z.string().min(1).default(fallback);

export const configSchema = commonEnv
  .extend({
    /** Port admin-svc listens on. */
    ADMIN_SVC_PORT: port(3104),
    /** Moves this service's schema to its own database (defaults to DATABASE_URL). */
    ADMIN_DATABASE_URL: z.string().min(1).optional(),
    /** auth-svc's internal API (bans, sessions, roles, unlock, the user pages of the resync). */
    AUTH_SVC_URL: serviceUrl('http://127.0.0.1:3101'),
    /** gdpr-svc's internal API (a user's data summary, the erasure saga). */
    GDPR_SVC_URL: serviceUrl('http://127.0.0.1:3103'),
    /** Access tiers, a comma list; the first is every new user's tier. */
    ACCESS_TIERS: csv
      .default(['public', 'beta', 'alpha', 'founder'])
      .refine((t) => t.length > 0 && t.every((x) => /^[a-z][a-z0-9_-]{0,63}$/.test(x)), 'a comma list of lowercase tier names'),
    /**
     * Keys the pseudonym that replaces an erased user's id in the admin audit log (HMAC-SHA256), so the
     * entries of one erased user stay grouped without naming them. At least 32 characters; required in production.
     */
    ADMIN_PSEUDONYM_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_PSEUDONYM_SECRET),
    /** How long a call to auth-svc or gdpr-svc may take before the admin gets 503 SOURCE_UNAVAILABLE (ms). */
    ADMIN_UPSTREAM_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  })
  .superRefine(productionRules)
  .superRefine(devSecretRefused('ADMIN_PSEUDONYM_SECRET', DEV_PSEUDONYM_SECRET));

export type Config = z.output<typeof configSchema>;

export const loadServiceConfig = (env: Record<string, string | undefined> = process.env): Config =>
  loadConfig('admin-svc', configSchema, env);
