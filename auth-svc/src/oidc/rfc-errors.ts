import type { BetterAuthPlugin } from 'better-auth';
import { APIError, createAuthMiddleware } from 'better-auth/api';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, type JWK } from 'jose';

/** PKCE failures the plugin reports as invalid_request; RFC 7636 §4.6 makes them invalid_grant. */
const PKCE_FAILURES = new Set([
  'code verification failed',
  'code_verifier required because PKCE was used in authorization',
  'code_verifier provided but PKCE was not used in authorization',
]);

/**
 * Revoking a token that is unknown, already revoked or expired: RFC 7009 §2.2 answers 200 (the
 * plugin means to, but its check never matches). These descriptions come only from /oauth2/revoke.
 */
const ALREADY_INVALID = new Set([
  'token not found',
  'refresh token revoked',
  'opaque access token not found',
  'Invalid access token',
  'invalid JWT signature',
]);

const json = (status: number, body?: Record<string, string>) =>
  new Response(body ? JSON.stringify(body) : null, {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' },
  });

/** The only algorithm the jwt plugin signs access tokens with (`jwks.keyPairConfig` in src/auth/auth.ts). */
const ACCESS_TOKEN_ALG = 'EdDSA';

interface KeyRow {
  id: string;
  publicKey: string;
  alg?: string | null;
}

/**
 * Whether a JWT-shaped access token carries no signature of ours: an unreadable header, another algorithm, an
 * unknown key id or a bad signature. The plugin hands such a token to jose and lets its JOSENotSupported,
 * JWKSNoMatchingKey and JWSSignatureVerificationFailed through (a 500); the token is simply invalid (RFC 6750 §3.1).
 * A genuine signature passes on to the plugin, which checks everything else (expiry, audience, session).
 */
async function unsignedJwt(ctx: { context: { adapter: { findMany: <T>(q: { model: string }) => Promise<T[]> } } }, token: unknown) {
  if (typeof token !== 'string' || token.split('.').length !== 3) return false;
  try {
    if (decodeProtectedHeader(token).alg !== ACCESS_TOKEN_ALG) return true;
    const rows = await ctx.context.adapter.findMany<KeyRow>({ model: 'jwks' });
    const keys = rows.map((r) => ({ ...(JSON.parse(r.publicKey) as JWK), kid: r.id, alg: r.alg ?? ACCESS_TOKEN_ALG }));
    await compactVerify(token, createLocalJWKSet({ keys }));
    return false;
  } catch {
    return true;
  }
}

const invalidToken = () =>
  new APIError(
    'UNAUTHORIZED',
    { error: 'invalid_token', error_description: 'Invalid access token' },
    { 'WWW-Authenticate': 'Bearer error="invalid_token", error_description="Invalid access token"' },
  );

/**
 * Brings the few answers of @better-auth/oauth-provider 1.7.5 that differ from the RFCs in line,
 * without patching the package. Client authentication failures stay `invalid_client` (401).
 */
export function oauthRfcErrors() {
  return {
    id: 'mana-oauth-rfc-errors',
    hooks: {
      before: [
        {
          matcher: (ctx) => ctx.path === '/oauth2/userinfo',
          handler: createAuthMiddleware(async (ctx) => {
            const header = ctx.headers?.get('authorization') ?? '';
            const fromHeader = /^(Bearer|DPoP) +(\S+)$/i.exec(header)?.[2];
            const body: unknown = ctx.body;
            const fromBody = typeof body === 'object' && body !== null ? (body as { access_token?: unknown }) : {};
            if ((await unsignedJwt(ctx, fromHeader)) || (await unsignedJwt(ctx, fromBody.access_token))) throw invalidToken();
          }),
        },
      ],
    },
    onResponse: async (response: Response) => {
      if ((response.status !== 400 && response.status !== 401) || !(response.headers.get('content-type') ?? '').includes('json')) return;
      let body: unknown;
      try {
        body = await response.clone().json();
      } catch {
        return;
      }
      if (typeof body !== 'object' || body === null) return;
      const { error, error_description: description } = body as { error?: unknown; error_description?: unknown };
      if (error !== 'invalid_request' || typeof description !== 'string') return;
      if (PKCE_FAILURES.has(description)) return { response: json(400, { error: 'invalid_grant', error_description: description }) };
      if (ALREADY_INVALID.has(description)) return { response: json(200) };
      return;
    },
  } satisfies BetterAuthPlugin;
}
