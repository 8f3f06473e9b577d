import type { BetterAuthPlugin } from 'better-auth';
import { APIError, createAuthMiddleware, getSessionFromCtx } from 'better-auth/api';
import { TWO_FACTOR_ERROR_CODES } from 'better-auth/plugins';
import type { Db } from '../../db/types';
import { claimTotpCode, releaseTotpCode } from '../../domain/totp-replay';
import { chargedAttemptFailed } from './lockout';
import { bodyString, pendingTwoFactorUserId, returnedError, type HookCtx } from './security-audit-meta';

const VERIFY_TOTP = '/two-factor/verify-totp';

async function totpUserId(ctx: HookCtx): Promise<string | undefined> {
  return (await pendingTwoFactorUserId(ctx)) ?? (await getSessionFromCtx(ctx))?.user.id;
}

/**
 * A TOTP code works once (ASVS 6.5.1): every TOTP check (sign-in, enrolment, /api/v1 2fa verify and
 * disable, /reauth, the hosted page) goes through Better Auth's verify-totp, where the code is claimed
 * before the check; a code claimed already gets the answer of a wrong code. A code that turns out
 * wrong is given back, so a guess never blocks the user's right code.
 */
export function totpOnce(db: Db) {
  return {
    id: 'mana-totp-once',
    hooks: {
      before: [
        {
          matcher: (ctx) => ctx.path === VERIFY_TOTP,
          handler: createAuthMiddleware(async (ctx) => {
            const code = bodyString(ctx.body, 'code');
            const userId = code ? await totpUserId(ctx) : undefined;
            if (!code || !userId) return;
            if (await claimTotpCode(db, userId, code)) return;
            // A replayed code is a wrong code, for the lockout too: the attempt it charged stays and may take the lock.
            await chargedAttemptFailed(ctx);
            throw APIError.from('UNAUTHORIZED', TWO_FACTOR_ERROR_CODES.INVALID_CODE);
          }),
        },
      ],
      after: [
        {
          matcher: (ctx) => ctx.path === VERIFY_TOTP,
          handler: createAuthMiddleware(async (ctx) => {
            if (!returnedError(ctx.context.returned)) return;
            const code = bodyString(ctx.body, 'code');
            const userId = code ? await totpUserId(ctx) : undefined;
            if (code && userId) await releaseTotpCode(db, userId, code);
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}
