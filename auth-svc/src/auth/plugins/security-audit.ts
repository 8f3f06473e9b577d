import type { BetterAuthPlugin } from 'better-auth';
import { createAuthMiddleware, getSessionFromCtx } from 'better-auth/api';
import { eq } from 'drizzle-orm';
import { decodeJwt, type JWTPayload } from 'jose';
import * as tables from '../../db/schema';
import type { Db } from '../../db/types';
import { recordSecurityEvent, type RequestMeta, type SecurityEventType } from '../../domain/security-events';
import { passkeyById, passkeyOwner } from '../../domain/passkeys';
import { clearFailures, takeOwedClear } from '../../domain/lockout';
import { recordSignIn } from '../../domain/sign-ins';
import { findUserByEmail } from '../../domain/users';
import { bodyString, hookMeta, pendingTwoFactorUserId, returnedError, type HookCtx } from './security-audit-meta';

type UserRow = typeof tables.user.$inferSelect;

export interface SecurityAuditOptions {
  db: Db;
  /** A sign-in from a device the user has not used before (and they have used others). */
  onNewDevice: (user: UserRow, meta: RequestMeta) => void;
}

const AUDITED = new Set([
  '/sign-in/email',
  '/sign-out',
  '/two-factor/verify-totp',
  '/two-factor/verify-backup-code',
  '/two-factor/disable',
  '/two-factor/generate-backup-codes',
  '/change-password',
  '/reset-password',
  '/change-email',
  '/verify-email',
  '/magic-link/verify',
  '/passkey/verify-authentication',
  '/passkey/verify-registration',
  '/passkey/delete-passkey',
]);

/** Per-request facts only a before hook can see (the session before sign-out, the reset token's user). */
const before = new WeakMap<object, { userId?: string; twoFactorWasEnabled?: boolean; passkeyName?: string | null }>();

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * Records Better Auth's security-relevant outcomes in `auth.security_events` (never a password,
 * token or code) and tells users about sign-ins from new devices.
 */
export function securityAudit(opts: SecurityAuditOptions) {
  const { db } = opts;
  const record = (userId: string | null, type: SecurityEventType, meta: RequestMeta, context?: Record<string, unknown>) =>
    recordSecurityEvent(db, { userId, type, meta, context });
  const userByEmail = (email: string) => findUserByEmail(db, email);
  const userById = async (id: string) => (await db.select().from(tables.user).where(eq(tables.user.id, id)).limit(1))[0];

  /** A completed sign-in: recorded with the lockout clear it owes (`ctx.context` is its request's context). */
  const signedIn = async (ctx: HookCtx, userId: string, method: string, meta: RequestMeta) => {
    const clearLockoutOf = takeOwedClear(ctx.context);
    const { newDevice } = await recordSignIn(db, { userId, method, meta, clearLockoutOf }).catch(async (err: unknown) => {
      // The sign-in is complete even if its record failed: its count still goes (best effort, the error stands).
      if (clearLockoutOf !== undefined) await clearFailures(db, clearLockoutOf).catch(() => undefined);
      throw err;
    });
    if (!newDevice) return;
    const user = await userById(userId);
    if (!user) return;
    await record(userId, 'new_device_sign_in', meta, { userAgent: meta.userAgent?.slice(0, 256) ?? null });
    opts.onNewDevice(user, meta);
  };

  const after = async (ctx: HookCtx) => {
    const meta = hookMeta(ctx.headers);
    const err = returnedError(ctx.context.returned);
    const failed = err !== undefined && err.status >= 400;
    const returned: unknown = ctx.context.returned;
    const made = ctx.context.newSession;
    const seen = before.get(ctx.context);
    switch (ctx.path) {
      case '/sign-in/email': {
        if (failed) {
          const user = await userByEmail(bodyString(ctx.body, 'email') ?? '');
          const reason = err.code === 'EMAIL_NOT_VERIFIED' ? 'email_not_verified' : user ? 'invalid_password' : 'unknown_email';
          return record(user?.id ?? null, 'sign_in_failure', meta, { reason, method: 'password' });
        }
        if (made) return signedIn(ctx, made.user.id, 'password', meta);
        return;
      }
      case '/two-factor/verify-totp':
      case '/two-factor/verify-backup-code': {
        const method = ctx.path === '/two-factor/verify-totp' ? 'totp' : 'backup_code';
        if (failed) {
          const userId = seen?.userId ?? (await pendingTwoFactorUserId(ctx));
          if (err.code === 'INVALID_CODE' || err.code === 'INVALID_BACKUP_CODE')
            return record(userId ?? null, 'two_factor_failed', meta, { method });
          return;
        }
        if (!made) return;
        if (method === 'backup_code') await record(made.user.id, 'backup_code_used', meta);
        if (seen?.userId) {
          // Verified inside a session: the first code activates two-factor.
          if (seen.twoFactorWasEnabled === false) await record(made.user.id, 'two_factor_enabled', meta);
          return;
        }
        return signedIn(ctx, made.user.id, method, meta);
      }
      case '/two-factor/disable':
        if (!failed && made) await record(made.user.id, 'two_factor_disabled', meta);
        return;
      case '/two-factor/generate-backup-codes':
        if (!failed && seen?.userId) await record(seen.userId, 'backup_codes_regenerated', meta);
        return;
      case '/sign-out':
        if (!failed && seen?.userId) await record(seen.userId, 'sign_out', meta, { method: 'cookie' });
        return;
      case '/change-password':
        if (!failed && isObject(returned) && isObject(returned.user) && typeof returned.user.id === 'string')
          await record(returned.user.id, 'password_changed', meta);
        return;
      case '/reset-password':
        if (!failed && seen?.userId) await record(seen.userId, 'password_reset', meta);
        return;
      case '/change-email':
        if (!failed && seen?.userId) await record(seen.userId, 'email_change_requested', meta);
        return;
      case '/verify-email':
        return emailChanged(ctx, meta);
      case '/magic-link/verify':
        if (made) {
          await record(made.user.id, 'magic_link_used', meta);
          await signedIn(ctx, made.user.id, 'magic_link', meta);
        }
        return;
      case '/passkey/verify-authentication':
        return passkeySignIn(ctx, meta, made?.user.id, err?.code);
      case '/passkey/verify-registration': {
        const passkey = isObject(returned) ? returned : {};
        const id = typeof passkey.id === 'string' ? passkey.id : undefined;
        if (!failed && id && seen?.userId)
          await record(seen.userId, 'passkey_added', meta, {
            passkeyId: id,
            name: typeof passkey.name === 'string' ? passkey.name : null,
          });
        return;
      }
      case '/passkey/delete-passkey': {
        const id = bodyString(ctx.body, 'id');
        if (!failed && id && seen?.userId && seen.passkeyName !== undefined)
          await record(seen.userId, 'passkey_removed', meta, { passkeyId: id, name: seen.passkeyName });
        return;
      }
    }
  };

  // A passkey sign-in is a full sign-in (no second factor follows); a refused one names the credential's owner when known.
  const passkeySignIn = async (ctx: HookCtx, meta: RequestMeta, userId: string | undefined, errorCode: string | undefined) => {
    if (userId) return signedIn(ctx, userId, 'passkey', meta);
    if (!errorCode) return;
    const response = isObject(ctx.body) && isObject(ctx.body.response) ? ctx.body.response : undefined;
    const credentialId = typeof response?.id === 'string' ? response.id.slice(0, 1024) : undefined;
    const owner = credentialId ? await passkeyOwner(db, credentialId) : undefined;
    await record(owner ?? null, 'sign_in_failure', meta, { reason: errorCode.toLowerCase(), method: 'passkey' });
  };

  // The change is complete when the token's user now has the token's new address.
  const emailChanged = async (ctx: HookCtx, meta: RequestMeta) => {
    const token = isObject(ctx.query) && typeof ctx.query.token === 'string' ? ctx.query.token : undefined;
    if (!token) return;
    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch {
      return;
    }
    if (typeof claims.updateTo !== 'string' || typeof claims.userId !== 'string') return;
    const user = await userById(claims.userId);
    if (user && user.email === claims.updateTo) await record(user.id, 'email_changed', meta, { requestType: claims.requestType ?? null });
  };

  return {
    id: 'mana-security-audit',
    hooks: {
      before: [
        {
          matcher: (ctx) =>
            ctx.path !== undefined &&
            [
              '/sign-out',
              '/two-factor/verify-totp',
              '/two-factor/verify-backup-code',
              '/two-factor/generate-backup-codes',
              '/change-email',
              '/reset-password',
              '/passkey/verify-registration',
              '/passkey/delete-passkey',
            ].includes(ctx.path),
          handler: createAuthMiddleware(async (ctx) => {
            if (ctx.path === '/reset-password') {
              const token =
                bodyString(ctx.body, 'token') ?? (isObject(ctx.query) && typeof ctx.query.token === 'string' ? ctx.query.token : undefined);
              const found = token ? await ctx.context.internalAdapter.findVerificationValue(`reset-password:${token}`) : null;
              if (found) before.set(ctx.context, { userId: found.value });
              return;
            }
            const session = await getSessionFromCtx(ctx).catch(() => null);
            if (!session) return;
            if (ctx.path === '/passkey/delete-passkey') {
              // Only the owner's own passkey is deleted (the endpoint checks); its name is gone afterwards.
              const id = bodyString(ctx.body, 'id');
              const found = id ? await passkeyById(db, id) : undefined;
              if (found?.userId === session.user.id) before.set(ctx.context, { userId: session.user.id, passkeyName: found.name });
              return;
            }
            before.set(ctx.context, { userId: session.user.id, twoFactorWasEnabled: session.user.twoFactorEnabled === true });
          }),
        },
      ],
      after: [{ matcher: (ctx) => ctx.path !== undefined && AUDITED.has(ctx.path), handler: createAuthMiddleware(after) }],
    },
  } satisfies BetterAuthPlugin;
}
