import type { BetterAuthPlugin } from 'better-auth';
import { APIError, createAuthMiddleware, getSessionFromCtx } from 'better-auth/api';
import type { Db } from '../../db/types';
import { isRecentlyAuthenticated } from '../../domain/reauth';

/** Better Auth endpoints that need a recent sign-in or re-authentication (step-up). */
const SENSITIVE = new Set(['/two-factor/disable', '/change-email']);

export const REAUTH_REQUIRED = {
  code: 'REAUTH_REQUIRED',
  message: 'Confirm your password or a second-factor code first (POST /api/v1/auth/reauth), or sign in again',
};

/**
 * Step-up authentication on Better Auth's own endpoints (cookie and in-process calls alike): turning
 * two-factor off and changing the email address need the session to have authenticated within
 * REAUTH_MAX_AGE_SECONDS, checked in the database (auth-svc owns the sessions).
 */
export function stepUp(db: Db, maxAgeSeconds: number) {
  return {
    id: 'mana-step-up',
    hooks: {
      before: [
        {
          matcher: (ctx) => ctx.path !== undefined && SENSITIVE.has(ctx.path),
          handler: createAuthMiddleware(async (ctx) => {
            const session = await getSessionFromCtx(ctx).catch(() => null);
            // Without a session the endpoint answers 401 itself.
            if (!session) return;
            if (!(await isRecentlyAuthenticated(db, session.session.id, maxAgeSeconds)))
              throw APIError.from('UNAUTHORIZED', REAUTH_REQUIRED);
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}
