import type { BetterAuthPlugin } from 'better-auth';
import { APIError, createAuthMiddleware } from 'better-auth/api';

export const INPUT_ERRORS = {
  INVALID_CHARACTER: { code: 'INVALID_CHARACTER', message: 'Text must not contain the NUL character (U+0000)' },
  INVALID_OAUTH_QUERY: { code: 'INVALID_OAUTH_QUERY', message: 'oauth_query must be a string' },
} as const;

/** Whether a parsed body, query or params hold a NUL anywhere (keys too); the walk stops at a sane depth. */
export function hasNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (depth > 32 || typeof value !== 'object' || value === null) return false;
  return Object.entries(value).some(([k, v]) => k.includes('\u0000') || hasNul(v, depth + 1));
}

/**
 * Inputs Better Auth's endpoints hand on unchecked, refused up front on every endpoint with a 400 (each found by
 * test/e2e/fuzz.test.ts as a 500): a NUL character (PostgreSQL text cannot hold it: an organization id, a consent id),
 * and an `oauth_query` that is no string (the OAuth provider's hook reads it as a query string before any validation).
 * First in the plugin list, so its hook runs before every other plugin's.
 */
export function inputGuard() {
  return {
    id: 'mana-input-guard',
    $ERROR_CODES: INPUT_ERRORS,
    hooks: {
      before: [
        {
          matcher: () => true,
          handler: createAuthMiddleware(async (ctx) => {
            if (hasNul(ctx.body) || hasNul(ctx.query) || hasNul(ctx.params))
              throw APIError.from('BAD_REQUEST', INPUT_ERRORS.INVALID_CHARACTER);
            const body: unknown = ctx.body;
            if (typeof body === 'object' && body !== null && 'oauth_query' in body) {
              const q = (body as { oauth_query?: unknown }).oauth_query;
              if (q !== undefined && q !== null && typeof q !== 'string')
                throw APIError.from('BAD_REQUEST', INPUT_ERRORS.INVALID_OAUTH_QUERY);
            }
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}
