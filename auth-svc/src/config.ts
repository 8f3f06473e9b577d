import { z } from 'zod';
import { boolFlag, commonEnv, csv, loadConfig, port, productionRules } from '@mana/shared';
import { passkeyEnv, passkeyRules } from './auth/plugins/passkey/config';
import { oidcEnv, oidcRules } from './oidc/config';

/** Used only outside production, with a loud warning at startup (see auth.ts). */
export const DEV_AUTH_SECRET = 'dev-only-better-auth-secret-change-me-0000000000';

export const configSchema = commonEnv
  .extend({
    /** Port auth-svc listens on. */
    AUTH_SVC_PORT: port(3101),
    /** Moves this service's schema to its own database (defaults to DATABASE_URL). */
    AUTH_DATABASE_URL: z.string().min(1).optional(),
    /** Signs session cookies and encrypts the JWT private keys. Required in production (32+ chars). */
    BETTER_AUTH_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_AUTH_SECRET),
    /** e.g. `.mana.how`: one sign-in across subdomains. Unset = host-only cookies. */
    COOKIE_DOMAIN: z.string().min(1).optional(),
    /** Browser origins allowed to call Better Auth with cookies (CSRF origin check), besides BASE_URL. */
    CORS_ORIGINS: csv,
    /** SMTP relay; unset in development = mails (and their links) are written to the log. */
    SMTP_HOST: z.string().min(1).optional(),
    SMTP_PORT: port(587),
    SMTP_USER: z.string().min(1).optional(),
    SMTP_PASS: z.string().min(1).optional(),
    /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
    SMTP_SECURE: boolFlag(false),
    /** Sender of every mail. */
    MAIL_FROM: z.string().min(3).default('Mana <no-reply@mana.how>'),
    /** Sign-in requires a verified email address. */
    REQUIRE_EMAIL_VERIFICATION: boolFlag(true),
    /** Minimum password length (ASVS: at least 8; at most 128 is fixed). */
    PASSWORD_MIN_LENGTH: z.coerce.number().int().min(8).max(64).default(8),
    /**
     * Better Auth's own per-IP limiter (database storage, shared by all instances). Off by default:
     * the gateway is the rate-limiting point and per-account lockout lives in auth-svc's database.
     */
    AUTH_RATE_LIMIT: boolFlag(false),
    /** Failed sign-ins (password, 2FA code, backup code) per email within the window that lock it. */
    LOCKOUT_MAX_ATTEMPTS: z.coerce.number().int().min(3).max(100).default(10),
    /** Window (minutes) in which failures are counted; ASVS: at most 100 failures per hour. */
    LOCKOUT_WINDOW_MINUTES: z.coerce.number().int().min(1).max(1440).default(15),
    /** How long (minutes) a locked email stays locked unless an admin unlocks it. */
    LOCKOUT_DURATION_MINUTES: z.coerce.number().int().min(1).max(10080).default(15),
    /**
     * Absolute session lifetime from sign-in (default 30 days): refreshes slide the 7-day idle expiry,
     * never past this. Applies to /api/v1 token sessions and Better Auth cookie sessions alike.
     */
    SESSION_MAX_LIFETIME_SECONDS: z.coerce
      .number()
      .int()
      .positive()
      .max(2_147_483_647)
      .default(30 * 24 * 3600),
    /** Origins a magic link may redirect to after sign-in, besides BASE_URL and CORS_ORIGINS. */
    MAGIC_LINK_CALLBACK_ALLOWLIST: csv,
    /** OIDC provider (Synapse and other relying parties): see src/oidc/config.ts. */
    ...oidcEnv,
    /** Passkeys (WebAuthn relying party): see src/auth/plugins/passkey/config.ts. */
    ...passkeyEnv,
  })
  .superRefine((cfg, ctx) => {
    productionRules(cfg, ctx);
    oidcRules(cfg, ctx);
    passkeyRules(cfg, ctx);
    if (cfg.NODE_ENV !== 'production') return;
    if (cfg.BETTER_AUTH_SECRET === DEV_AUTH_SECRET)
      ctx.addIssue({ code: 'custom', path: ['BETTER_AUTH_SECRET'], message: 'required in production' });
    if (!cfg.SMTP_HOST) ctx.addIssue({ code: 'custom', path: ['SMTP_HOST'], message: 'required in production' });
  });

export type Config = z.output<typeof configSchema>;

export const loadServiceConfig = (env: Record<string, string | undefined> = process.env): Config =>
  loadConfig('auth-svc', configSchema, env);
