import { betterAuth } from 'better-auth';
import { drizzleAdapter } from 'better-auth/adapters/drizzle';
import { jwt, type JwtOptions } from 'better-auth/plugins/jwt';
import { twoFactor } from 'better-auth/plugins/two-factor';
import { eq } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Logger } from 'pino';
import { jwtIssuer } from '@mana/shared';
import { DEV_AUTH_SECRET, type Config } from '../config';
import * as tables from '../db/schema';
import { PASSWORD_MAX_LENGTH } from '../domain/passwords';
import { ACCESS_TOKEN_TTL_SECONDS, JWKS_GRACE_SECONDS, REFRESH_TOKEN_TTL_SECONDS, accessClaims } from '../domain/tokens';
import type { Mailer, MailRequest } from '../mail/mailer';
import { OIDC_MODELS } from '../oidc/models';
import { oidcPlugins } from '../oidc/provider';
import { passwordPolicy } from './plugins/password-policy';
import { lockoutSettlement } from './plugins/lockout';
import { lockoutPlugin } from './plugins/lockout-notify';
import { magicLinkPlugins } from './plugins/magic-link';
import { organizationPlugin } from './plugins/organization';
import { bareErrors } from './plugins/bare-errors';
import { withDatabaseOutage } from './database-outage';
import { inputGuard } from './plugins/input-guard';
import { guardProfile } from './plugins/profile-guard';
import { securityAuditPlugin } from './plugins/security-audit-notify';
import { stepUp } from './plugins/step-up';
import { emailChangeEndsSessions } from './plugins/email-change-sessions';
import { backupCodeHasher, twoFactorCodes } from './plugins/two-factor-codes';
import { totpOnce } from './plugins/totp-once';
import { passkeyPlugins } from './plugins/passkey';
import { PASSWORD_VERSION_FIELD, withPasswordVersion } from './plugins/password-version';

export interface AuthDeps {
  config: Config;
  db: NodePgDatabase<typeof tables>;
  mailer: Mailer;
  logger: Logger;
  /** Called after Better Auth committed a change that wrote outbox rows (triggers): relay them now. */
  onOutboxWrite: () => void;
}

/** Better Auth's tables, keyed by model name for the drizzle adapter. */
const AUTH_MODELS = {
  user: tables.user,
  session: tables.session,
  account: tables.account,
  verification: tables.verification,
  jwks: tables.jwks,
  rateLimit: tables.rateLimit,
  twoFactor: tables.twoFactor,
  organization: tables.organization,
  member: tables.member,
  invitation: tables.invitation,
  passkey: tables.passkey,
  ...OIDC_MODELS,
};

/**
 * The one Better Auth instance of auth-svc. Later features (two-factor, magic link, organizations,
 * lockout, OIDC provider) are added as plugins in `plugins: [...]` below, each in `./plugins/`.
 */
export function createAuth(deps: AuthDeps) {
  const { config, db, mailer, logger } = deps;
  const log = logger.child({ component: 'better-auth' });
  if (config.BETTER_AUTH_SECRET === DEV_AUTH_SECRET)
    log.warn('BETTER_AUTH_SECRET is not set: using the public development secret. NEVER run like this in production.');
  const production = config.NODE_ENV === 'production';
  const publicOrigin = new URL(config.BASE_URL).origin;

  // Mails go out in the background: a request's timing must not tell whether an account exists,
  // and a slow SMTP server must not hold up sign-up.
  const sendMail = (req: MailRequest) => {
    mailer.send(req).catch((err: unknown) => log.error({ err: (err as Error).message, kind: req.kind }, 'sending mail failed'));
  };
  const acceptLanguage = (request?: Request) => request?.headers.get('accept-language') ?? null;
  const backupCodes = backupCodeHasher(config.BETTER_AUTH_SECRET);
  const oidc = oidcPlugins(config, db);
  const storedUser = async (id: string) => (await db.select().from(tables.user).where(eq(tables.user.id, id)).limit(1))[0];

  return betterAuth({
    appName: 'Mana',
    baseURL: config.BASE_URL,
    basePath: '/api/auth',
    secret: config.BETTER_AUTH_SECRET,
    trustedOrigins: [publicOrigin, ...config.CORS_ORIGINS],
    telemetry: { enabled: false },
    // An error that is not Better Auth's own APIError (a database outage in a plugin's query, a bug) leaves
    // auth.handler instead of becoming better-call's empty 500: Express's error handler answers it like every
    // other route (toAppError: an outage is 503 SERVICE_UNAVAILABLE with Retry-After) and logs it. APIErrors
    // and redirects are answered by Better Auth as before.
    onAPIError: { throw: true },
    // No OpenTelemetry SDK runs in Mana: Better Auth's spans (one per endpoint, hook and adapter call) would only
    // cost CPU on every sign-in. Switch them back on together with an SDK.
    experimental: { instrumentation: { enabled: false } },
    logger: {
      disabled: config.LOG_LEVEL === 'silent',
      level: 'warn',
      log: (level, message) => log[level]({ source: 'better-auth' }, message),
    },
    // A database outage leaves the adapter as a 503 APIError, which Better Auth passes through (database-outage.ts);
    // so do the session insert's refusals (a banned user, plugins/ban.ts; a password changed since a sign-in checked
    // it, plugins/password-version.ts, which also writes the version a sign-in read into its session).
    database: withDatabaseOutage(withPasswordVersion(drizzleAdapter(db, { provider: 'pg', schema: AUTH_MODELS, transaction: true }))),
    emailAndPassword: {
      enabled: true,
      requireEmailVerification: config.REQUIRE_EMAIL_VERIFICATION,
      minPasswordLength: config.PASSWORD_MIN_LENGTH,
      maxPasswordLength: PASSWORD_MAX_LENGTH,
      // /api/v1/auth/register answers { user } only; sign-in is a separate step on both paths.
      autoSignIn: false,
      revokeSessionsOnPasswordReset: true,
      resetPasswordTokenExpiresIn: 3600,
      sendResetPassword: async ({ user, url }, request) =>
        sendMail({
          kind: 'reset-password',
          to: user.email,
          locale: (await storedUser(user.id))?.locale,
          acceptLanguage: acceptLanguage(request),
          vars: { name: user.name, url },
        }),
    },
    emailVerification: {
      sendOnSignUp: config.REQUIRE_EMAIL_VERIFICATION,
      sendOnSignIn: config.REQUIRE_EMAIL_VERIFICATION,
      autoSignInAfterVerification: false,
      expiresIn: 24 * 3600,
      sendVerificationEmail: async ({ user, url }, request) => {
        const stored = await storedUser(user.id);
        // The change-email flow sends this to the *new* address, which is not stored yet.
        const kind = stored && stored.email !== user.email ? 'verify-new-email' : 'verify-email';
        sendMail({ kind, to: user.email, locale: stored?.locale, acceptLanguage: acceptLanguage(request), vars: { name: user.name, url } });
      },
    },
    user: {
      additionalFields: {
        role: { type: 'string', required: false, defaultValue: 'user', input: false },
        locale: { type: 'string', required: false, input: true },
      },
      changeEmail: {
        enabled: true,
        // A verified user first approves the change from the old address, then confirms the new one.
        sendChangeEmailConfirmation: async ({ user, newEmail, url }, request) =>
          sendMail({
            kind: 'confirm-email-change',
            to: user.email,
            locale: (await storedUser(user.id))?.locale,
            acceptLanguage: acceptLanguage(request),
            vars: { name: user.name, url, newEmail },
          }),
      },
    },
    session: {
      expiresIn: REFRESH_TOKEN_TTL_SECONDS,
      updateAge: 24 * 3600,
      additionalFields: {
        deviceId: { type: 'string', required: false, input: false },
        deviceName: { type: 'string', required: false, input: false },
        passwordVersion: PASSWORD_VERSION_FIELD,
      },
    },
    // The version of the password, bumped by a trigger when it changes (plugins/password-version.ts); a pending
    // two-factor sign-in carries the version its password step checked.
    account: { additionalFields: { passwordVersion: PASSWORD_VERSION_FIELD } },
    verification: { additionalFields: { passwordVersion: PASSWORD_VERSION_FIELD } },
    // Shared storage only: no state lives in one process (see README, "Rate limiting").
    rateLimit: { enabled: config.AUTH_RATE_LIMIT, storage: 'database' },
    advanced: {
      cookiePrefix: 'mana',
      useSecureCookies: production,
      defaultCookieAttributes: { httpOnly: true, sameSite: 'lax', secure: production },
      crossSubDomainCookies: config.COOKIE_DOMAIN ? { enabled: true, domain: config.COOKIE_DOMAIN } : undefined,
      ipAddress: { ipAddressHeaders: ['x-forwarded-for'] },
    },
    databaseHooks: {
      // user.registered.v1, user.updated.v1 and session.revoked.v1 are written by triggers in the
      // same transaction (drizzle/0002_user_session_events.sql); these hooks only validate and kick.
      user: {
        create: {
          before: async (data) => {
            guardProfile(data);
          },
          after: async () => deps.onOutboxWrite(),
        },
        update: {
          before: async (data) => {
            guardProfile(data);
          },
          after: async () => deps.onOutboxWrite(),
        },
      },
      session: { delete: { after: async () => deps.onOutboxWrite() } },
    },
    plugins: [
      inputGuard(),
      bareErrors(),
      jwt(jwtOptions(config)),
      passwordPolicy({ minLength: config.PASSWORD_MIN_LENGTH }),
      // TOTP per RFC 6238 (SHA-1, 30 s, 6 digits); 10 single-use backup codes stored hashed. Lockout
      // of second-factor failures is ours (per email, across every path), so the plugin's own is off.
      twoFactor({
        issuer: 'Mana',
        totpOptions: { period: 30, digits: 6 },
        backupCodeOptions: { amount: 10, length: 10, storeBackupCodes: backupCodes.storage },
        trustDeviceMaxAge: 30 * 24 * 3600,
        accountLockout: { enabled: false },
      }),
      twoFactorCodes(backupCodes),
      // Before the lockout: their refusals (a forged or expired oauth_query, a stale session) cost no attempt (the
      // lockout's before hook counts one before the secret is checked, and an attempt refused by a later before hook
      // is never given back).
      ...oidc.beforeLockout,
      stepUp(db, config.REAUTH_MAX_AGE_SECONDS),
      lockoutPlugin(config, db, sendMail),
      // After the lockout: a locked account's right code is refused before it is used up.
      totpOnce(db),
      emailChangeEndsSessions(db, deps.onOutboxWrite),
      // Takes a completed sign-in's lockout clear into its sign-in statement; the settlement clears what it did not.
      securityAuditPlugin(config, db, sendMail),
      lockoutSettlement(db),
      ...magicLinkPlugins(config, db, sendMail),
      organizationPlugin(config, db, sendMail),
      ...oidc.plugins,
      ...passkeyPlugins(config, db),
    ],
  });
}

/** JWT plugin options; the key-rotation command uses the same ones. */
export function jwtOptions(config: Config): JwtOptions {
  return {
    jwks: { keyPairConfig: { alg: 'EdDSA', crv: 'Ed25519' }, gracePeriod: JWKS_GRACE_SECONDS },
    jwt: {
      issuer: jwtIssuer(config),
      audience: config.JWT_AUDIENCE,
      expirationTime: `${ACCESS_TOKEN_TTL_SECONDS}s`,
      // Minimal claims: sub (added by the plugin), email, role, sid.
      definePayload: ({ user, session }) => {
        const { sub: _sub, ...rest } = accessClaims({ user: { id: user.id, email: user.email, role: roleOf(user) }, session });
        return rest;
      },
    },
  };
}

function roleOf(user: Record<string, unknown>): string {
  return typeof user.role === 'string' ? user.role : 'user';
}

export type Auth = ReturnType<typeof createAuth>;
