import type { Request } from 'express';
import { signedSessionCookie } from '../auth/better-auth-adapter';
import type { AuthContext } from '../context';
import type { SessionRow } from '../domain/sessions';
import { forwardedHeaders } from './request-meta';

/**
 * Headers for an in-process Better Auth call made on behalf of a bearer client: its session presented
 * as Better Auth's signed session cookie (the same check as a browser's).
 */
export async function sessionCookieHeaders(ctx: AuthContext, req: Request, session: SessionRow): Promise<Headers> {
  const headers = forwardedHeaders(req);
  headers.set('cookie', await signedSessionCookie(ctx.auth, session.token));
  return headers;
}
