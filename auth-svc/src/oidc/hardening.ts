import type { BetterAuthPlugin } from 'better-auth';
import { APIError, createAuthMiddleware } from 'better-auth/api';
import { signJWT, type JwtOptions } from 'better-auth/plugins/jwt';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Db } from '../db/types';
import { oauthRefreshTokenSession } from '../domain/oauth-tokens';

/**
 * Client management of @better-auth/oauth-provider 1.7.5. Only the configuration (SYNAPSE_OIDC_*,
 * OIDC_CLIENTS, seeded at start-up) creates clients: a user who could register one would hold a
 * phishing kit (a trusted login page redirecting to a URI of their choice).
 */
export const CLIENT_MANAGEMENT_PATHS = new Set([
  '/oauth2/create-client',
  '/oauth2/get-client',
  '/oauth2/get-clients',
  '/oauth2/update-client',
  '/oauth2/client/rotate-secret',
  '/oauth2/delete-client',
  '/oauth2/register',
]);
const isClientManagement = (path: string | undefined) =>
  path !== undefined && (CLIENT_MANAGEMENT_PATHS.has(path) || path.startsWith('/admin/oauth2/'));

/**
 * What the provider plugin leaves open, closed without patching it:
 * - every client-management endpoint answers 404, as if it did not exist;
 * - a refresh token dies with the session it was issued in (the plugin keeps `offline_access` refresh
 *   tokens alive when their session ends and never looks at `session_id` in the grant): invalid_grant;
 * - id_tokens carry no `at_hash` (optional in the code flow): authlib, which Synapse validates them
 *   with, knows no hash for EdDSA and, since its fail-closed fix (1.6.9, Debian 1.2.0+deb12u2),
 *   rejects an EdDSA id_token that has one. The plugin always adds it, so the token answer's id_token
 *   is signed again without it, with the same key (kid).
 */
export function oidcHardening(db: Db) {
  return {
    id: 'mana-oidc-hardening',
    hooks: {
      before: [
        {
          matcher: (ctx) => isClientManagement(ctx.path),
          handler: createAuthMiddleware(async () => {
            throw new APIError('NOT_FOUND', { message: 'Not found' });
          }),
        },
        {
          matcher: (ctx) => ctx.path === '/oauth2/token',
          handler: createAuthMiddleware(async (ctx) => {
            const body = (ctx.body ?? {}) as { grant_type?: unknown; refresh_token?: unknown };
            if (body.grant_type !== 'refresh_token' || typeof body.refresh_token !== 'string') return;
            if ((await oauthRefreshTokenSession(db, body.refresh_token)) === 'ended')
              throw new APIError('BAD_REQUEST', {
                error: 'invalid_grant',
                error_description: 'the session of this refresh token has ended',
              });
          }),
        },
      ],
      after: [
        {
          matcher: (ctx) => ctx.path === '/oauth2/token',
          handler: createAuthMiddleware(async (ctx) => {
            const returned: unknown = ctx.context.returned;
            if (typeof returned !== 'object' || returned === null || !('id_token' in returned)) return;
            const idToken = returned.id_token;
            if (typeof idToken !== 'string') return;
            const { at_hash: atHash, ...claims } = decodeJwt(idToken);
            if (atHash === undefined) return;
            const jwtOptions: JwtOptions | undefined = ctx.context.getPlugin('jwt')?.options;
            const { kid } = decodeProtectedHeader(idToken);
            const resigned = await signJWT(ctx, { options: jwtOptions, payload: claims, signingKeyId: kid });
            return ctx.json({ ...returned, id_token: resigned });
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}
