import { createHmac } from 'node:crypto';
import type { Request } from 'express';
import type { AuthContext } from '../context';
import { forwardedHeaders } from './request-meta';
import type { SessionRow } from '../domain/sessions';

/**
 * Headers for an in-process Better Auth call made on behalf of a bearer client: its session presented
 * as Better Auth's signed session cookie (the same check as a browser's).
 */
export async function sessionCookieHeaders(ctx: AuthContext, req: Request, session: SessionRow): Promise<Headers> {
  const c = await ctx.auth.$context;
  const signature = createHmac('sha256', c.secret).update(session.token).digest('base64');
  const headers = forwardedHeaders(req);
  headers.set('cookie', `${c.authCookies.sessionToken.name}=${encodeURIComponent(`${session.token}.${signature}`)}`);
  return headers;
}
