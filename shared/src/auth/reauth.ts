import type { RequestHandler } from 'express';
import { z } from 'zod';
import { ERRORS } from '../errors';
import { serviceUrls, type ServiceUrls } from '../http/service-urls';

export interface RequireRecentAuthOptions {
  /** auth-svc's direct URL(s) (`AUTH_SVC_URL`: one or a comma-separated list of instances), without a path. */
  authUrl: string | readonly string[] | ServiceUrls;
  /** `MANA_SERVICE_KEY`, sent as `X-Service-Key`. */
  serviceKey: string;
  /** `REAUTH_MAX_AGE_SECONDS`: how old the session's last authentication may be. */
  maxAgeSeconds: number;
  /** How long auth-svc may take to answer (ms) before the request fails with 503. */
  timeoutMs?: number;
}

const asServiceUrls = (v: RequireRecentAuthOptions['authUrl']): ServiceUrls => (typeof v === 'object' && 'fetch' in v ? v : serviceUrls(v));

const authTimeAnswer = z.object({
  sessionId: z.string(),
  userId: z.string(),
  authenticatedAt: z.iso.datetime({ offset: true }),
});

export type SessionAuthTime = z.output<typeof authTimeAnswer>;

/**
 * auth-svc's answer for a session's last authentication (sign-in or POST /api/v1/auth/reauth), or
 * undefined when the session is unknown or has ended. Throws 503 when auth-svc cannot be asked.
 */
export async function fetchSessionAuthTime(
  opts: Omit<RequireRecentAuthOptions, 'maxAgeSeconds'>,
  sid: string,
): Promise<SessionAuthTime | undefined> {
  const auth = asServiceUrls(opts.authUrl);
  let res: Response;
  try {
    res = await auth.fetch(`/api/v1/internal/sessions/${encodeURIComponent(sid)}/auth-time`, {
      headers: { 'x-service-key': opts.serviceKey },
      signal: AbortSignal.timeout(opts.timeoutMs ?? 2000),
    });
  } catch {
    throw ERRORS.unavailable('The authentication service cannot confirm the session right now');
  }
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  const parsed = res.ok ? authTimeAnswer.safeParse(await res.json().catch(() => undefined)) : undefined;
  if (!parsed?.success) {
    await res.body?.cancel().catch(() => {});
    throw ERRORS.unavailable('The authentication service cannot confirm the session right now');
  }
  return parsed.data;
}

/**
 * Step-up authentication for operations that cannot be undone: after `requireAuth`, the session
 * (`req.auth.sid`) must have signed in or re-authenticated within `maxAgeSeconds`, else 401
 * `REAUTH_REQUIRED`. The access token stays minimal: auth-svc is asked for the time, on these routes only.
 */
export function requireRecentAuth(opts: RequireRecentAuthOptions): RequestHandler {
  const auth = { ...opts, authUrl: asServiceUrls(opts.authUrl) };
  return async (req, _res, next) => {
    const claims = req.auth;
    if (!claims) throw ERRORS.tokenMissing();
    const found = await fetchSessionAuthTime(auth, claims.sid);
    if (!found || found.userId !== claims.sub) throw ERRORS.tokenRevoked();
    if (!isRecent(new Date(found.authenticatedAt), opts.maxAgeSeconds)) throw ERRORS.reauthRequired();
    next();
  };
}

/** Whether an authentication at `at` is at most `maxAgeSeconds` old. */
export function isRecent(at: Date, maxAgeSeconds: number, now = Date.now()): boolean {
  return now - at.getTime() <= maxAgeSeconds * 1000;
}
