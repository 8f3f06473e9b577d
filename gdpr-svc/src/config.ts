import { z } from 'zod';
import { commonEnv, csv, devSecretRefused, loadConfig, port, productionRules, SERVICE_NAME_PATTERN } from '@mana/shared';

const DEV_GDPR_SECRET = 'dev-only-gdpr-secret-change-me-000000000000';

/** A service URL list (comma-separated, like the gateway's); gdpr-svc calls the first one. */
const serviceUrl = (fallback: string) => z.string().min(1).default(fallback);

export const configSchema = commonEnv
  .extend({
    /** Port gdpr-svc listens on. */
    GDPR_SVC_PORT: port(3103),
    /** Moves this service's schema to its own database (defaults to DATABASE_URL). */
    GDPR_DATABASE_URL: z.string().min(1).optional(),
    /**
     * Keys the user-id hash (receipts, rate-limit rows, finished erasures) and encrypts the receipt signing
     * key at rest. At least 32 characters; required in production. Changing it orphans the stored keys.
     */
    GDPR_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_GDPR_SECRET),
    /** auth-svc's internal API (first URL of the list). */
    AUTH_SVC_URL: serviceUrl('http://127.0.0.1:3101'),
    /** vault-svc's internal API. */
    VAULT_SVC_URL: serviceUrl('http://127.0.0.1:3102'),
    /** credits-svc's internal API. */
    CREDITS_SVC_URL: serviceUrl('http://127.0.0.1:3105'),
    /** admin-svc's internal API. */
    ADMIN_SVC_URL: serviceUrl('http://127.0.0.1:3104'),
    /** How long the summary and the export wait for one source before marking it unavailable (ms). */
    GDPR_SOURCE_TIMEOUT_MS: z.coerce.number().int().positive().default(3000),
    /** Exports per user per rolling hour (counted in the database, so every instance agrees). */
    GDPR_EXPORTS_PER_HOUR: z.coerce.number().int().positive().default(5),
    /** The mana-sync database for per-app entity counts; unset = the `projects` section is null. */
    SYNC_DATABASE_URL: z.string().min(1).optional(),
    /**
     * The per-app count query on the sync database: `$1` is the user id; it returns rows `(app, count)`.
     * Runs in a read-only transaction.
     */
    SYNC_ENTITY_COUNT_SQL: z
      .string()
      .min(1)
      .default('select app_id as app, count(*)::int as count from sync_changes where user_id = $1 group by app_id order by app_id'),
    /** Services that must answer an erasure before it is complete (each answers with this name). */
    ERASURE_PARTICIPANTS: csv
      .default(['auth', 'vault', 'credits', 'admin'])
      .refine((list) => list.length > 0 && list.every((s) => SERVICE_NAME_PATTERN.test(s)), 'a comma list of service names (a-z, 0-9, -)'),
    /** First delay before participants that have not answered are asked again (ms); doubles per attempt. */
    ERASURE_RETRY_MS: z.coerce.number().int().positive().default(30_000),
    /** After this many hours an unanswered erasure is `partial` (and still retried). Fractions allowed. */
    ERASURE_DEADLINE_HOURS: z.coerce.number().positive().default(24),
  })
  .superRefine(productionRules)
  .superRefine(devSecretRefused('GDPR_SECRET', DEV_GDPR_SECRET));

export type Config = z.output<typeof configSchema>;

export const loadServiceConfig = (env: Record<string, string | undefined> = process.env): Config =>
  loadConfig('gdpr-svc', configSchema, env);
