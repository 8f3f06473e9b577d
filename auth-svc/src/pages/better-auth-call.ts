import type { Request as ExpressRequest, Response as ExpressResponse } from 'express';
import { callEndpoint } from '../auth/better-auth-adapter';
import type { AuthContext } from '../context';

export interface AuthCallResult {
  status: number;
  body: Record<string, unknown>;
}

/**
 * Calls one of Better Auth's endpoints through its own HTTP handler, exactly as a browser's fetch
 * would (cookies, hooks, plugins: the provider's continuation, two-factor, lockout), and passes the
 * cookies it sets on to the browser.
 */
export async function callBetterAuth(
  ctx: AuthContext,
  req: ExpressRequest,
  res: ExpressResponse,
  path: string,
  body: Record<string, unknown>,
  /** `acceptLanguage`: the page's language, so mails sent by the call match the page. */
  opts: { acceptLanguage?: string } = {},
): Promise<AuthCallResult> {
  const headers = new Headers();
  for (const name of ['cookie', 'user-agent', 'x-forwarded-for', 'accept-language'] as const) {
    const value = req.headers[name];
    if (typeof value === 'string') headers.set(name, value);
  }
  if (opts.acceptLanguage) headers.set('accept-language', opts.acceptLanguage);
  const answer = await callEndpoint(ctx.auth, ctx.config.BASE_URL, path, body, headers);
  for (const cookie of answer.setCookies) res.append('Set-Cookie', cookie);
  return { status: answer.status, body: answer.body };
}

/** The provider's continuation: `{ redirect: true, url }` (to the client, the consent page or an error). */
export function redirectTarget(body: Record<string, unknown>): string | undefined {
  return body.redirect === true && typeof body.url === 'string' ? body.url : undefined;
}
