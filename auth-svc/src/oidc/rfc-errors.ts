import type { BetterAuthPlugin } from 'better-auth';

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

/**
 * Brings the few answers of @better-auth/oauth-provider 1.7.5 that differ from the RFCs in line,
 * without patching the package. Client authentication failures stay `invalid_client` (401).
 */
export function oauthRfcErrors() {
  return {
    id: 'mana-oauth-rfc-errors',
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
