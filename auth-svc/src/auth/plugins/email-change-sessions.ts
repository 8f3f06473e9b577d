import type { BetterAuthPlugin } from 'better-auth';
import { createAuthMiddleware, getSessionFromCtx } from 'better-auth/api';
import { eq } from 'drizzle-orm';
import { decodeJwt, type JWTPayload } from 'jose';
import * as tables from '../../db/schema';
import type { Db } from '../../db/types';
import { endOtherSessions } from '../../domain/sessions';
import { hookMeta, returnedError } from './security-audit-meta';

/**
 * An email change ends the account's other sessions once it completes (the new address is confirmed):
 * whoever could act as the user under the old address is signed out. The session of the browser that
 * confirms the change, if it has one, stays.
 */
export function emailChangeEndsSessions(db: Db, onOutboxWrite: () => void) {
  return {
    id: 'mana-email-change-sessions',
    hooks: {
      after: [
        {
          matcher: (ctx) => ctx.path === '/verify-email',
          handler: createAuthMiddleware(async (ctx) => {
            // A redirect to the callback URL is an APIError too: only a 4xx/5xx means the link did nothing.
            if ((returnedError(ctx.context.returned)?.status ?? 0) >= 400) return;
            const token = typeof ctx.query?.token === 'string' ? ctx.query.token : undefined;
            let claims: JWTPayload | undefined;
            try {
              claims = token ? decodeJwt(token) : undefined;
            } catch {
              return;
            }
            // Better Auth verified the token's signature before this hook runs; only a completed change counts.
            const updateTo = claims?.updateTo;
            const userId = claims?.userId;
            if (typeof updateTo !== 'string' || typeof userId !== 'string') return;
            const [user] = await db.select({ email: tables.user.email }).from(tables.user).where(eq(tables.user.id, userId)).limit(1);
            if (user?.email !== updateTo) return;
            const current = await getSessionFromCtx(ctx).catch(() => null);
            const keep = current && current.user.id === userId ? current.session.id : '';
            const ended = await endOtherSessions(db, userId, keep, hookMeta(ctx.headers));
            if (ended.length > 0) onOutboxWrite();
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}
