import type { BetterAuthPlugin } from 'better-auth';
import { APIError, createAuthMiddleware } from 'better-auth/api';
import { checkPassword } from '../../domain/passwords';

/** Native endpoints that set a password, and the body field carrying it. */
const PASSWORD_FIELDS: Record<string, 'password' | 'newPassword'> = {
  '/sign-up/email': 'password',
  '/reset-password': 'newPassword',
  '/change-password': 'newPassword',
  '/set-password': 'newPassword',
};

export const PASSWORD_ERROR_CODES = {
  PASSWORD_TOO_SHORT: { code: 'PASSWORD_TOO_SHORT', message: 'Password is too short' },
  PASSWORD_TOO_LONG: { code: 'PASSWORD_TOO_LONG', message: 'Password is too long' },
  PASSWORD_TOO_COMMON: { code: 'PASSWORD_TOO_COMMON', message: 'Password is too common' },
} as const;

/**
 * OWASP ASVS password rules on every native path that sets a password, checked before Better Auth
 * hashes anything. A password change also always ends the user's other sessions.
 */
export function passwordPolicy(opts: { minLength: number }) {
  return {
    id: 'mana-password-policy',
    $ERROR_CODES: PASSWORD_ERROR_CODES,
    hooks: {
      before: [
        {
          matcher: (ctx) => ctx.path !== undefined && ctx.path in PASSWORD_FIELDS,
          handler: createAuthMiddleware(async (ctx) => {
            const field = PASSWORD_FIELDS[ctx.path];
            const body: unknown = ctx.body;
            if (!field || typeof body !== 'object' || body === null) return;
            const password = (body as Record<string, unknown>)[field];
            if (typeof password !== 'string') return; // Better Auth's own body schema answers 400
            const violation = checkPassword(password, opts.minLength);
            if (violation) throw APIError.from('BAD_REQUEST', violation);
            if (ctx.path === '/change-password') return { context: { body: { ...body, revokeOtherSessions: true } } };
            return;
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}
