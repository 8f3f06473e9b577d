import type { RequestHandler } from 'express';
import { ERRORS } from '@mana/shared';
import type { AuthContext } from '../context';
import { isRecentlyAuthenticated } from '../domain/reauth';
import { liveSession } from './require-session';

/**
 * auth-svc's own step-up check (after requireSession): the session must have signed in or
 * re-authenticated within REAUTH_MAX_AGE_SECONDS, else 401 REAUTH_REQUIRED. Other services use
 * `requireRecentAuth` from @mana/shared, which asks auth-svc over HTTP; here the database is at hand.
 */
export function requireRecentSession(ctx: AuthContext): RequestHandler {
  return async (req, _res, next) => {
    const { session } = liveSession(req);
    if (!(await isRecentlyAuthenticated(ctx.db, session.id, ctx.config.REAUTH_MAX_AGE_SECONDS))) throw ERRORS.reauthRequired();
    next();
  };
}
