import type { Request, RequestHandler } from 'express';
import { ERRORS, bearerToken } from '@mana/shared';
import type { AuthContext } from '../context';
import { findLiveSessionFast, type SessionRow, type UserRow } from '../domain/sessions';

const live = new WeakMap<Request, { session: SessionRow; user: UserRow }>();

/**
 * Bearer JWT plus a live session: auth-svc is the source of truth for sessions, so a token of an
 * ended session is refused here even before the gateway's denylist has heard of it.
 */
export function requireSession(ctx: AuthContext): RequestHandler {
  return async (req, _res, next) => {
    const token = bearerToken(req.headers.authorization);
    if (!token) throw ERRORS.tokenMissing();
    const claims = await ctx.verifier.verify(token);
    const found = await findLiveSessionFast(ctx.db, claims.sid, claims.sub);
    if (!found) throw ERRORS.tokenRevoked();
    req.auth = claims;
    req.bearerToken = token;
    live.set(req, found);
    next();
  };
}

/** The session and user loaded by requireSession. */
export function liveSession(req: Request): { session: SessionRow; user: UserRow } {
  const found = live.get(req);
  if (!found) throw ERRORS.tokenMissing();
  return found;
}
