import type { BetterAuthPlugin } from 'better-auth';
import { APIError, createAuthMiddleware, getSessionFromCtx } from 'better-auth/api';
import type { Db } from '../../db/types';
import {
  chargeAttempt,
  clearFailures,
  lockAtLimit,
  oweClear,
  refused,
  takeOwedClear,
  unchargeAttempt,
  type Charge,
  type LockoutPolicy,
} from '../../domain/lockout';
import { recordSecurityEvent, type RequestMeta } from '../../domain/security-events';
import { findUserByEmail } from '../../domain/users';
import { bodyString, hookMeta, pendingTwoFactorUserId, returnedError, type HookCtx } from './security-audit-meta';

const SIGN_IN = '/sign-in/email';
/** Second-factor checks during a sign-in (the two-factor cookie names the pending user). */
const SECOND_FACTOR = new Set(['/two-factor/verify-totp', '/two-factor/verify-backup-code', '/two-factor/verify-otp']);
/** Better Auth's answers to a wrong password, a wrong code and a wrong backup code. */
const INVALID_CREDENTIALS = { code: 'INVALID_EMAIL_OR_PASSWORD', message: 'Invalid email or password' };
const INVALID_CODE = { code: 'INVALID_CODE', message: 'Invalid code' };
const INVALID_BACKUP_CODE = { code: 'INVALID_BACKUP_CODE', message: 'Invalid backup code' };
/**
 * Password re-checks inside a session (step-up authentication, two-factor management, password change): a
 * wrong password counts like a failed sign-in, so a stolen session cannot guess the password without limit.
 */
const PASSWORD_RECHECK = new Set([
  '/verify-password',
  '/change-password',
  '/two-factor/enable',
  '/two-factor/disable',
  '/two-factor/generate-backup-codes',
  '/two-factor/get-totp-uri',
]);
const INVALID_PASSWORD = { code: 'INVALID_PASSWORD', message: 'Invalid password' };

export interface LockoutOptions {
  db: Db;
  policy: LockoutPolicy;
  /** The email just got locked (called once per lock, whether or not an account exists). */
  onLocked: (email: string, meta: RequestMeta) => Promise<void>;
}

/**
 * The charge of a request's attempt (`chargeAttempt` in its before hook) and the email it was charged to, for its
 * after hook: the after hook settles that same email without looking the user up again (a two-factor challenge a
 * parallel request used up in between would otherwise leave the attempt charged).
 */
type Charged = Charge & { email: string; failed: () => Promise<void> };
const charges = new WeakMap<object, Charged>();

/**
 * A before hook placed after the lockout (totp-once's replay refusal) refused a charged attempt as a wrong code:
 * it goes the way of a wrong code, the one that reached the limit takes the lock. A before hook's refusal skips
 * every after hook, so the lockout's own after hook never sees it.
 */
export async function chargedAttemptFailed(ctx: HookCtx): Promise<void> {
  await charges.get(ctx.context)?.failed();
}

async function pendingTwoFactorUser(ctx: HookCtx): Promise<{ id: string; email: string } | undefined> {
  const userId = await pendingTwoFactorUserId(ctx);
  const user = userId ? await ctx.context.internalAdapter.findUserById(userId) : null;
  return user ? { id: user.id, email: user.email } : undefined;
}

async function sessionUser(ctx: HookCtx): Promise<{ id: string; email: string } | undefined> {
  const session = await getSessionFromCtx(ctx).catch(() => null);
  return session ? { id: session.user.id, email: session.user.email } : undefined;
}

/**
 * The user whose second factor a code is checked against, in Better Auth's own order (`verifyTwoFactor`): the
 * session's when there is one, else the pending sign-in's. The other order let a session of one account with a
 * pending sign-in of another charge the guesses against the victim's factor to the other account.
 */
async function secondFactorUser(ctx: HookCtx): Promise<{ id: string; email: string } | undefined> {
  return (await sessionUser(ctx)) ?? (await pendingTwoFactorUser(ctx));
}

/**
 * Per-email lockout across every sign-in path (Better Auth has none): native and /api/v1 password
 * sign-in, TOTP and backup codes, password re-checks. Every attempt is counted before it is checked
 * (`chargeAttempt`), so a burst of parallel attempts gets no more checks than the limit; a locked email, or an
 * attempt beyond the limit, gets exactly the answer of a wrong password or code (after the same password-hash
 * work), and unknown emails are counted the same way. A failure that reaches the limit takes the lock; a success
 * takes the count back.
 */
export function lockout(opts: LockoutOptions) {
  const { db, policy } = opts;
  /**
   * Charges the attempt; why it must be refused unchecked (the email is locked, or the attempt is beyond the limit),
   * or undefined when it goes on to its check. An attempt beyond the limit is refused while the attempts before it
   * are still being checked, but it is no guess: its charge goes back and it takes no lock. Only a checked failure that reaches the limit locks (`failed`), so more parallel sign-ins
   * with the right password than the limit (a client retrying while its first tries still run) do not lock the
   * account: the ones that were checked succeed and clear the count.
   */
  const charge = async (ctx: HookCtx, email: string): Promise<'locked' | 'limit' | undefined> => {
    const c = await chargeAttempt(db, email, policy);
    if (!refused(c, policy)) {
      charges.set(ctx.context, { ...c, email, failed: () => failed(ctx, c.failures, email) });
      return undefined;
    }
    if (c.locked) return 'locked';
    await unchargeAttempt(db, { email, window: c.window });
    return 'limit';
  };

  const lockNow = async (email: string, meta: RequestMeta) => {
    if (await lockAtLimit(db, email, policy)) await opts.onLocked(email, meta);
  };
  /** A checked attempt failed: it was counted already; the one that reached the limit takes the lock. */
  const failed = async (ctx: HookCtx, failures: number, email: string) => {
    if (failures >= policy.maxAttempts) await lockNow(email, hookMeta(ctx.headers));
  };
  return {
    id: 'mana-lockout',
    hooks: {
      before: [
        {
          matcher: (ctx) => ctx.path === SIGN_IN,
          handler: createAuthMiddleware(async (ctx) => {
            const email = bodyString(ctx.body, 'email');
            if (!email) return;
            const reason = await charge(ctx, email);
            if (!reason) return;
            // The same work as a wrong password, so timing does not tell a lock either.
            await ctx.context.password.hash(bodyString(ctx.body, 'password') ?? '');
            const user = await findUserByEmail(db, email);
            await recordSecurityEvent(db, {
              userId: user?.id ?? null,
              type: 'sign_in_failure',
              meta: hookMeta(ctx.headers),
              context: { reason, method: 'password' },
            });
            throw APIError.from('UNAUTHORIZED', INVALID_CREDENTIALS);
          }),
        },
        {
          matcher: (ctx) => ctx.path !== undefined && SECOND_FACTOR.has(ctx.path),
          handler: createAuthMiddleware(async (ctx) => {
            const user = await secondFactorUser(ctx);
            const reason = user && (await charge(ctx, user.email));
            if (!user || !reason) return;
            await recordSecurityEvent(db, {
              userId: user.id,
              type: 'two_factor_failed',
              meta: hookMeta(ctx.headers),
              context: { reason },
            });
            throw APIError.from('UNAUTHORIZED', ctx.path === '/two-factor/verify-backup-code' ? INVALID_BACKUP_CODE : INVALID_CODE);
          }),
        },
        {
          matcher: (ctx) => ctx.path !== undefined && PASSWORD_RECHECK.has(ctx.path),
          handler: createAuthMiddleware(async (ctx) => {
            const user = await sessionUser(ctx);
            const reason = user && (await charge(ctx, user.email));
            if (!user || !reason) return;
            // The same work as a wrong password (`/change-password` sends it as currentPassword).
            await ctx.context.password.hash(bodyString(ctx.body, 'password') ?? bodyString(ctx.body, 'currentPassword') ?? '');
            await recordSecurityEvent(db, {
              userId: user.id,
              type: 'sign_in_failure',
              meta: hookMeta(ctx.headers),
              context: { reason, method: 'password_recheck' },
            });
            throw APIError.from('BAD_REQUEST', INVALID_PASSWORD);
          }),
        },
      ],
      after: [
        {
          matcher: (ctx) => ctx.path === SIGN_IN,
          handler: createAuthMiddleware(async (ctx) => {
            const c = charges.get(ctx.context);
            if (!c) return;
            const { email } = c;
            const err = returnedError(ctx.context.returned);
            if (err?.status === 401) return c.failed();
            // Any other error came before the password was checked (a malformed request) or after a right one without
            // a completed sign-in (email not verified, banned): not a guess, and not a sign-in that clears the count.
            if (err) return unchargeAttempt(db, c);
            const returned: unknown = ctx.context.returned;
            // Password right, second factor pending: the sign-in is not complete yet. The attempt is given back but the
            // count is not cleared: a known password must not reset the count its code guesses are on.
            if (typeof returned === 'object' && returned !== null && 'twoFactorRedirect' in returned) return unchargeAttempt(db, c);
            // The count goes with the sign-in's audit statement (or after it: lockoutSettlement).
            oweClear(ctx.context, email);
          }),
        },
        {
          matcher: (ctx) => ctx.path !== undefined && SECOND_FACTOR.has(ctx.path),
          handler: createAuthMiddleware(async (ctx) => {
            const c = charges.get(ctx.context);
            if (!c) return;
            const err = returnedError(ctx.context.returned);
            // Codes tried inside a session count too: a stolen session must not guess its way to disabling 2FA.
            if (err?.status === 401 && (err.code === 'INVALID_CODE' || err.code === 'INVALID_BACKUP_CODE')) return c.failed();
            // A sign-in completed: the count goes. A right code inside a session, or an error that was not a guess,
            // gives the attempt back and leaves the count as it was.
            if (!err && ctx.context.newSession) return oweClear(ctx.context, c.email);
            await unchargeAttempt(db, c);
          }),
        },
        {
          matcher: (ctx) => ctx.path !== undefined && PASSWORD_RECHECK.has(ctx.path),
          handler: createAuthMiddleware(async (ctx) => {
            const c = charges.get(ctx.context);
            if (!c) return;
            if (returnedError(ctx.context.returned)?.code === 'INVALID_PASSWORD') return c.failed();
            // A right password (or an error that was not a guess) gives the attempt back without clearing the count:
            // a stolen session that knows the password must not reset the count its code guesses are on.
            await unchargeAttempt(db, c);
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}

/**
 * Clears the count a completed sign-in owes (`oweClear`) when the security audit, which runs between the lockout and
 * this plugin, did not take it into its sign-in statement: it must come after the audit in the plugin list.
 */
export function lockoutSettlement(db: Db) {
  return {
    id: 'mana-lockout-settlement',
    hooks: {
      after: [
        {
          matcher: (ctx) => ctx.path === SIGN_IN || (ctx.path !== undefined && SECOND_FACTOR.has(ctx.path)),
          handler: createAuthMiddleware(async (ctx) => {
            const email = takeOwedClear(ctx.context);
            if (email) await clearFailures(db, email);
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}
