import type { BetterAuthOptions } from 'better-auth';
import { APIError } from 'better-auth/api';
import { TWO_FACTOR_ERROR_CODES } from 'better-auth/plugins';
// Better Auth's own per-request context (an AsyncLocalStorage it runs every endpoint in); `better-auth` does not
// re-export it. The one place in auth-svc that needs it: the adapter has no other way to tell requests apart.
import { tryGetCurrentAuthEndpointContext } from '@better-auth/core/context';
import { causeChain } from '@mana/shared';

const SIGN_IN = '/sign-in/email';
/** The second steps of a two-factor sign-in: each completes the sign-in its password step left pending. */
const SECOND_FACTOR = new Set(['/two-factor/verify-totp', '/two-factor/verify-backup-code', '/two-factor/verify-otp']);
/** The constraint the session insert's trigger names when the password changed since the sign-in read it (drizzle/0016). */
const PASSWORD_CHANGED_CONSTRAINT = 'session_password_current';
/** Better Auth's answer to a wrong password: a sign-in that checked an outdated password gets exactly that. */
const INVALID_CREDENTIALS = { code: 'INVALID_EMAIL_OR_PASSWORD', message: 'Invalid email or password' };

/** Better Auth's field on the account, the session and the verification row (the column password_version). */
export const PASSWORD_VERSION_FIELD = { type: 'number', required: false, input: false, returned: false } as const;

type AdapterFactory<A extends object> = (options: BetterAuthOptions) => A;
type Row = Record<string, unknown>;

/** The password version a sign-in checked, and whose it is. */
interface VersionRead {
  userId: string;
  version: number;
}

/**
 * The version each sign-in read, by its request's Better Auth context (`ctx.context`: the endpoint's handler and its
 * hooks share it, where the two-factor plugin's after hook, which writes the pending sign-in, sees another `ctx`).
 */
const versionsRead = new WeakMap<object, VersionRead>();

/** The context of a password step or of a second step of a sign-in, and which of the two it is. */
function signInContext(): { key: object; secondFactor: boolean } | undefined {
  const ctx = tryGetCurrentAuthEndpointContext();
  if (ctx?.path === SIGN_IN) return { key: ctx.context, secondFactor: false };
  if (ctx?.path !== undefined && SECOND_FACTOR.has(ctx.path)) return { key: ctx.context, secondFactor: true };
  return undefined;
}

/** Better Auth's pending two-factor sign-in (`2fa-<random>`, its value the user id), not its attempt count (`2fa-attempts-…`). */
const isPendingSignIn = (row: Row | undefined) =>
  typeof row?.identifier === 'string' && row.identifier.startsWith('2fa-') && !row.identifier.startsWith('2fa-attempts-');

/** The password version of the credential account among a user's accounts (read with the user by the sign-in). */
function credentialVersion(user: Row): number | undefined {
  const accounts = Array.isArray(user.account) ? (user.account as Row[]) : [];
  const credential = accounts.find((a) => a.providerId === 'credential' && a.accountId === user.id);
  return typeof credential?.passwordVersion === 'number' ? credential.passwordVersion : undefined;
}

/** The version a row this request read tells: the account's (password step) or the pending sign-in's (second step). */
function versionOf(model: string | undefined, row: Row, secondFactor: boolean): VersionRead | undefined {
  if (!secondFactor && model === 'user') {
    const version = credentialVersion(row);
    return version === undefined || typeof row.id !== 'string' ? undefined : { userId: row.id, version };
  }
  if (secondFactor && model === 'verification' && isPendingSignIn(row) && typeof row.passwordVersion === 'number')
    return typeof row.value === 'string' ? { userId: row.value, version: row.passwordVersion } : undefined;
  return undefined;
}

/** The row to write with the version this request read: its session, or the pending sign-in its password step leaves. */
function stamped(model: string | undefined, data: Row | undefined, read: VersionRead | undefined, secondFactor: boolean): Row | undefined {
  if (!read || !data) return undefined;
  if (model === 'session' && data.userId === read.userId) return { ...data, passwordVersion: read.version };
  if (!secondFactor && model === 'verification' && isPendingSignIn(data) && data.value === read.userId)
    return { ...data, passwordVersion: read.version };
  return undefined;
}

/**
 * A password sign-in's session remembers which password it checked: the credential account's `passwordVersion`,
 * read by the same statement as the hash Better Auth verifies (its user lookup with the accounts), is written into
 * the session it creates. The session INSERT refuses it when the password changed since (a trigger,
 * drizzle/0016_password_version.sql), and a password change ends the sessions stamped with the version it replaces:
 * a sign-in with the old password racing a reset or a password change keeps no session, whichever commits first.
 * Without this, a sign-in that verified the old hash and inserted its session just after the reset ended the
 * sessions kept a live session for whoever knew the old password. No statement is added to the sign-in: the version
 * comes with the row read anyway, and the check is inside the insert.
 *
 * A two-factor sign-in makes its session in its second step, up to 10 minutes later: the version goes with the
 * pending sign-in (Better Auth's `2fa-…` verification row, drizzle/0017), and the second step, which reads that row
 * before it checks the code, writes it into the session. A reset between the two steps refuses the second one.
 */
export function withPasswordVersion<A extends object>(factory: AdapterFactory<A>): AdapterFactory<A> {
  return (options) => stamp(factory(options));
}

const WATCHED = new Set<string | symbol>(['findOne', 'findMany', 'create', 'incrementOne']);

/**
 * Before a second step uses up a backup code (the two-factor row's `incrementOne`): the password its pending sign-in
 * checked must still be the account's, or the step is refused now, with the code kept. The session insert's trigger
 * is what guarantees the refusal; this only spares the code when the password changed before the step began.
 */
async function refuseStaleSecondStep(adapter: object, read: VersionRead): Promise<void> {
  const findOne = (adapter as { findOne: (q: unknown) => Promise<Row | null> }).findOne.bind(adapter);
  const account = await findOne({
    model: 'account',
    where: [
      { field: 'userId', value: read.userId },
      { field: 'providerId', value: 'credential' },
    ],
  });
  if (account?.passwordVersion !== read.version) throw APIError.from('UNAUTHORIZED', TWO_FACTOR_ERROR_CODES.INVALID_TWO_FACTOR_COOKIE);
}

function stamp<A extends object>(adapter: A): A {
  return new Proxy(adapter, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || !WATCHED.has(key)) return value;
      const fn = value as (...args: unknown[]) => Promise<unknown>;
      return async (...args: unknown[]) => {
        const signIn = signInContext();
        const query = args[0] as { model?: string; data?: Row } | undefined;
        if (!signIn || !query) return fn.apply(target, args);
        if (key === 'incrementOne') {
          const read = versionsRead.get(signIn.key);
          if (signIn.secondFactor && query.model === 'twoFactor' && read) await refuseStaleSecondStep(target, read);
          return fn.apply(target, args);
        }
        const data = key === 'create' ? stamped(query.model, query.data, versionsRead.get(signIn.key), signIn.secondFactor) : undefined;
        if (data) args = [{ ...query, data }, ...args.slice(1)];
        const result = await fn.apply(target, args);
        if (key === 'create') return result;
        for (const row of Array.isArray(result) ? (result as unknown[]) : [result]) {
          const read = row && typeof row === 'object' ? versionOf(query.model, row as Row, signIn.secondFactor) : undefined;
          if (read) versionsRead.set(signIn.key, read);
        }
        return result;
      };
    },
  });
}

/**
 * The trigger's refusal (SQLSTATE P0001 naming its constraint, possibly wrapped by drizzle) as Better Auth's answer
 * to a wrong password, 401 INVALID_EMAIL_OR_PASSWORD: the password checked is no longer the account's, and the
 * answer must not tell that it was the old one. On a second step it is the answer of a used or expired pending
 * sign-in, 401 INVALID_TWO_FACTOR_COOKIE (INVALID_CHALLENGE on /api/v1): the sign-in must start again, with the
 * password. The adapter wrapper (database-outage.ts) calls it for every error.
 */
export function passwordChangedRefusal(err: unknown): APIError | undefined {
  for (const { code, constraint } of causeChain(err)) {
    if (code !== 'P0001' || constraint !== PASSWORD_CHANGED_CONSTRAINT) continue;
    if (signInContext()?.secondFactor) return APIError.from('UNAUTHORIZED', TWO_FACTOR_ERROR_CODES.INVALID_TWO_FACTOR_COOKIE);
    return APIError.from('UNAUTHORIZED', INVALID_CREDENTIALS);
  }
  return undefined;
}
