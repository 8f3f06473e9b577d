import type { BetterAuthOptions } from 'better-auth';
import { APIError } from 'better-auth/api';
import { isDatabaseUnavailable } from '@mana/shared';
import { banRefusal } from './plugins/ban';
import { passwordChangedRefusal } from './plugins/password-version';

type AdapterFactory<A extends object> = (options: BetterAuthOptions) => A;

/** Better Auth's answer for a database outage: 503 with Retry-After, the driver's error only as the (unserialised) cause. */
export function databaseOutageError(cause: unknown): APIError {
  return new APIError(
    'SERVICE_UNAVAILABLE',
    { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable, try again shortly', cause },
    { 'retry-after': '1' },
  );
}

/**
 * Better Auth turns an adapter error into its own answer before any of our code sees it: an empty 500 on
 * /api/auth/* (better-call's default), or, where an endpoint catches the adapter call (sign-up's create user),
 * a 422 FAILED_TO_CREATE_USER without a cause. An APIError passes through both unchanged, so the adapter throws
 * a database outage (SQLSTATE 53300, class 08, a refused or cut connection) as a 503 APIError — the same
 * answer auth-svc's own routes give (shared toAppError). Every method is wrapped, and so is the adapter a
 * transaction hands its callback. The session insert's refusals leave it the same way: a banned user (a trigger,
 * plugins/ban.ts) as the 403 APIError ACCOUNT_BANNED, a password changed since the sign-in checked it
 * (plugins/password-version.ts) as the 401 of a wrong password.
 */
export function withDatabaseOutage<A extends object>(factory: AdapterFactory<A>): AdapterFactory<A> {
  return (options) => guard(factory(options));
}

function guard<A extends object>(adapter: A): A {
  return new Proxy(adapter, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        if (key === 'transaction' && typeof args[0] === 'function') {
          const callback = args[0] as (trx: object) => unknown;
          args = [(trx: object) => callback(guard(trx)), ...args.slice(1)];
        }
        let result: unknown;
        try {
          result = fn.apply(target, args);
        } catch (err) {
          throw translate(err);
        }
        return result instanceof Promise
          ? result.catch((err: unknown) => {
              throw translate(err);
            })
          : result;
      };
    },
  });
}

const translate = (err: unknown): unknown =>
  isDatabaseUnavailable(err) ? databaseOutageError(err) : (banRefusal(err) ?? passwordChangedRefusal(err) ?? err);
