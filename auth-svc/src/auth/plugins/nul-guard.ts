import type { BetterAuthPlugin } from 'better-auth';
import { APIError, createAuthMiddleware } from 'better-auth/api';

export const NUL_ERROR = { code: 'INVALID_CHARACTER', message: 'Text must not contain the NUL character (U+0000)' };

/** Whether a parsed body, query or params hold a NUL anywhere (keys too); the walk stops at a sane depth. */
export function hasNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (depth > 32 || typeof value !== 'object' || value === null) return false;
  return Object.entries(value).some(([k, v]) => k.includes('\u0000') || hasNul(v, depth + 1));
}

/**
 * PostgreSQL text cannot hold U+0000: a Better Auth endpoint that passes such a string to a query (an organization
 * id, a consent id) failed with a 500 (found by test/e2e/fuzz.test.ts). Refused up front on every endpoint: 400.
 */
export function nulGuard() {
  return {
    id: 'mana-nul-guard',
    $ERROR_CODES: { INVALID_CHARACTER: NUL_ERROR },
    hooks: {
      before: [
        {
          matcher: () => true,
          handler: createAuthMiddleware(async (ctx) => {
            if (hasNul(ctx.body) || hasNul(ctx.query) || hasNul(ctx.params)) throw APIError.from('BAD_REQUEST', NUL_ERROR);
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}
