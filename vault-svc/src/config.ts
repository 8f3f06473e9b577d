import { z } from 'zod';
import { boolFlag, commonEnv, loadConfig, parseServiceUrls, port, productionRules, devSecretRefused } from '@mana/shared';

export const DEV_PSEUDONYM_SECRET = 'dev-only-vault-pseudonym-secret-change-me-000';

export const configSchema = commonEnv
  .extend({
    /** Port vault-svc listens on. */
    VAULT_SVC_PORT: port(3102),
    /** Moves this service's schema to its own database (defaults to DATABASE_URL). */
    VAULT_DATABASE_URL: z.string().min(1).optional(),
    /** The KEK, base64 of 32 bytes (id `kek-1`). Required in production unless MANA_AUTH_KEKS is set. */
    MANA_AUTH_KEK: z.string().optional(),
    /** Several KEKs for rotation: `id1:base64,id2:base64`. */
    MANA_AUTH_KEKS: z.string().optional(),
    /** The KEK id new wraps use; required when more than one KEK is configured. */
    MANA_AUTH_KEK_ACTIVE: z.string().optional(),
    /**
     * When the active KEK was introduced (ISO-8601 date, e.g. 2026-12-01). Only for monitoring: exported as
     * `vault_kek_age_seconds`, which the KEK rotation alert watches. Unset: no age is exported.
     */
    MANA_AUTH_KEK_ROTATED_AT: z.iso
      .date()
      .or(z.iso.datetime({ offset: true }))
      .transform((v) => new Date(v))
      .optional(),
    /**
     * Whether the (group-committed) audit rows of GET /key wait for the WAL flush. Off by default: the fetch
     * is a read, and a database crash may lose at most the last few hundred ms of fetch audit rows (state
     * changes and their audit rows always commit durably).
     */
    VAULT_DURABLE_FETCH_AUDIT: boolFlag(false),
    /**
     * Keys the HMAC pseudonym of an erased user's tombstone (`vault.erased_users`), which makes POST /init refuse the
     * user for good. The audit trail's pseudonyms stay random. At least 32 characters; required in production.
     */
    VAULT_PSEUDONYM_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_PSEUDONYM_SECRET),
    /** auth-svc's direct URL, or a comma-separated list of its instances (failover): step-up checks ask it when a session last authenticated. */
    AUTH_SVC_URL: z
      .string()
      .default('http://127.0.0.1:3101')
      .transform((v) => parseServiceUrls(v))
      .pipe(z.array(z.url()).min(1)),
  })
  .superRefine(productionRules)
  .superRefine(devSecretRefused('VAULT_PSEUDONYM_SECRET', DEV_PSEUDONYM_SECRET));

export type Config = z.output<typeof configSchema>;

export const loadServiceConfig = (env: Record<string, string | undefined> = process.env): Config =>
  loadConfig('vault-svc', configSchema, env);
