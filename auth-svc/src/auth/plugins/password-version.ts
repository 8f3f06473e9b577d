import type { BetterAuthOptions } from 'better-auth';
import { APIError } from 'better-auth/api';
// Better Auth's own per-request context (an AsyncLocalStorage it runs every endpoint in); `better-auth` does not
// re-export it. The one place in auth-svc that needs it: the adapter has no other way to tell requests apart.
import { tryGetCurrentAuthEndpointContext } from '@better-auth/core/context';
import { causeChain } from '@mana/shared';

const SIGN_IN = '/sign-in/email';
/** The constraint the session insert's trigger names when the password changed since the sign-in read it (drizzle/0016). */
const PASSWORD_CHANGED_CONSTRAINT = 'session_password_current';
/** Better Auth's answer to a wrong password: a sign-in that checked an outdated password gets exactly that. */
const INVALID_CREDENTIALS = { code: 'INVALID_EMAIL_OR_PASSWORD', message: 'Invalid email or password' };

/** Better Auth's field on the account and the session (the column password_version). */
export const PASSWORD_VERSION_FIELD = { type: 'number', required: false, input: false } as const;

type AdapterFactory<A extends object> = (options: BetterAuthOptions) => A;
type Row = Record<string, unknown>;

/** The credential account's version each password sign-in read, by the sign-in's endpoint context. */
const versionsRead = new WeakMap<object, number>();

const signInContext = (): object | undefined => {
  const ctx = tryGetCurrentAuthEndpointContext();
  return ctx?.path === SIGN_IN ? ctx : undefined;
};

/** The password version of the credential account among a user's accounts (read with the user by the sign-in). */
function credentialVersion(user: Row): number | undefined {
  const accounts = Array.isArray(user.account) ? (user.account as Row[]) : [];
  const credential = accounts.find((a) => a.providerId === 'credential' && a.accountId === user.id);
  return typeof credential?.passwordVersion === 'number' ? credential.passwordVersion : undefined;
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
 */
export function withPasswordVersion<A extends object>(factory: AdapterFactory<A>): AdapterFactory<A> {
  return (options) => stamp(factory(options));
}

function stamp<A extends object>(adapter: A): A {
  return new Proxy(adapter, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || (key !== 'findOne' && key !== 'create')) return value;
      const fn = value as (...args: unknown[]) => Promise<unknown>;
      return async (...args: unknown[]) => {
        const ctx = signInContext();
        const query = args[0] as { model?: string; data?: Row } | undefined;
        if (!ctx || !query) return fn.apply(target, args);
        if (key === 'create' && query.model === 'session' && versionsRead.has(ctx))
          args = [{ ...query, data: { ...query.data, passwordVersion: versionsRead.get(ctx) } }, ...args.slice(1)];
        const result = await fn.apply(target, args);
        if (key === 'findOne' && query.model === 'user' && result && typeof result === 'object') {
          const version = credentialVersion(result as Row);
          if (version !== undefined) versionsRead.set(ctx, version);
        }
        return result;
      };
    },
  });
}

/**
 * The trigger's refusal (SQLSTATE P0001 naming its constraint, possibly wrapped by drizzle) as Better Auth's answer
 * to a wrong password, 401 INVALID_EMAIL_OR_PASSWORD: the password checked is no longer the account's, and the
 * answer must not tell that it was the old one. The adapter wrapper (database-outage.ts) calls it for every error.
 */
export function passwordChangedRefusal(err: unknown): APIError | undefined {
  for (const { code, constraint } of causeChain(err)) {
    if (code === 'P0001' && constraint === PASSWORD_CHANGED_CONSTRAINT) return APIError.from('UNAUTHORIZED', INVALID_CREDENTIALS);
  }
  return undefined;
}
