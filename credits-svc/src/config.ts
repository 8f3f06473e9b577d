import { z } from 'zod';
import { commonEnv, loadConfig, port, productionRules, devSecretRefused } from '@mana/shared';

/** A package on sale: `{ id, name, credits, priceCents, currency }`. */
export const packageSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/),
  name: z.string().min(1).max(120),
  credits: z.number().int().positive(),
  priceCents: z.number().int().positive(),
  currency: z.string().regex(/^[a-z]{3}$/),
});
export type CreditPackage = z.output<typeof packageSchema>;

/** The seed's "100 mana = €1". */
const DEFAULT_PACKAGES: CreditPackage[] = [
  { id: 'mana-100', name: '100 Mana', credits: 100, priceCents: 100, currency: 'eur' },
  { id: 'mana-500', name: '500 Mana', credits: 500, priceCents: 500, currency: 'eur' },
  { id: 'mana-1000', name: '1000 Mana', credits: 1000, priceCents: 1000, currency: 'eur' },
  { id: 'mana-5000', name: '5000 Mana', credits: 5000, priceCents: 5000, currency: 'eur' },
];

const packagesJson = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (!raw) return DEFAULT_PACKAGES;
    try {
      const parsed = z.array(packageSchema).min(1).safeParse(JSON.parse(raw));
      if (parsed.success && new Set(parsed.data.map((p) => p.id)).size === parsed.data.length) return parsed.data;
      ctx.addIssue({ code: 'custom', message: 'a JSON array of { id, name, credits, priceCents, currency } with unique ids' });
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not valid JSON' });
    }
    return z.NEVER;
  });

export const DEV_PSEUDONYM_SECRET = 'dev-only-credits-pseudonym-secret-change-me';

export const configSchema = commonEnv
  .extend({
    /** Port credits-svc listens on. */
    CREDITS_SVC_PORT: port(3105),
    /** Moves this service's schema to its own database (defaults to DATABASE_URL). */
    CREDITS_DATABASE_URL: z.string().min(1).optional(),
    /** auth-svc's internal API (membership checks); the first of a comma-separated list is used. */
    AUTH_SVC_URL: z.string().min(1).default('http://127.0.0.1:3101'),
    /** Promo credits granted once per user on user.registered.v1 (0 = none). */
    CREDITS_SIGNUP_BONUS: z.coerce.number().int().min(0).default(150),
    /** Daily free credits, granted lazily once per 24 h window and expiring after 24 h (0 = none). */
    CREDITS_DAILY_FREE: z.coerce.number().int().min(0).default(5),
    /** Packages on sale, JSON array of `{ id, name, credits, priceCents, currency }` (default: 100 mana = €1). */
    CREDITS_PACKAGES: packagesJson,
    /** Keys the HMAC pseudonym that replaces an erased user's id on retained ledger and purchase rows. */
    CREDITS_PSEUDONYM_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_PSEUDONYM_SECRET),
    /** How often the sweeper releases expired holds and moves expired lots to breakage (ms). */
    CREDITS_SWEEP_INTERVAL_MS: z.coerce.number().int().positive().default(30_000),
    /** Stripe secret key; unset = purchases answer 503 PAYMENTS_NOT_CONFIGURED. */
    STRIPE_SECRET_KEY: z.string().min(1).optional(),
    /** Signing secret of the Stripe webhook endpoint (`whsec_…`); unset = every delivery is refused. */
    STRIPE_WEBHOOK_SECRET: z.string().min(1).optional(),
    /** Points the Stripe client at another host (`http://127.0.0.1:12111`: a local fake or stripe-mock). */
    STRIPE_API_URL: z.url().optional(),
  })
  .superRefine(productionRules)
  .superRefine(devSecretRefused('CREDITS_PSEUDONYM_SECRET', DEV_PSEUDONYM_SECRET));

export type Config = z.output<typeof configSchema>;

export const loadServiceConfig = (env: Record<string, string | undefined> = process.env): Config =>
  loadConfig('credits-svc', configSchema, env);
