/**
 * The route table of the architecture contract. First match wins, so more specific prefixes come
 * first. Matching is case-sensitive and segment-aware (`/api/v1/me` matches `/api/v1/me` and
 * `/api/v1/me/x`, never `/api/v1/meow`); anything unmatched is a 404 at the gateway.
 */

export type UpstreamName = 'auth' | 'vault' | 'gdpr' | 'admin' | 'credits';

/** public: anyone; bearer: valid JWT; admin: JWT with role admin; service: X-Service-Key. */
export type Access = 'public' | 'bearer' | 'admin' | 'service';

/** Which rate-limit bucket a path counts against (besides the general per-IP one). */
export type RateTier = 'general' | 'auth';

export interface Route {
  /** Metric label and log name. */
  name: string;
  upstream: UpstreamName;
  access: Access;
  matches: (path: string) => boolean;
}

/** `/a/b` matches `/a/b` and `/a/b/…`. */
const under = (prefix: string) => (path: string) =>
  path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47); /* / */
const exactly = (paths: readonly string[]) => {
  const set = new Set(paths);
  return (path: string) => set.has(path);
};

/**
 * `/api/v1/auth/*` paths anyone may call (the rest of `/api/v1/auth` needs a JWT). Later issues add
 * their public follow-ups here and only here. The hosted pages (`/auth/*`) are the `hosted-auth` route's.
 */
export const PUBLIC_V1_AUTH_PATHS: readonly string[] = [
  '/api/v1/auth/register',
  '/api/v1/auth/login',
  '/api/v1/auth/login/2fa',
  '/api/v1/auth/refresh',
  '/api/v1/auth/validate',
];

/** Internal prefixes owned by a service other than auth-svc (the rest of /api/v1/internal is auth's). */
const INTERNAL_OWNERS: ReadonlyArray<[string, UpstreamName]> = [
  ['vault', 'vault'],
  ['credits', 'credits'],
  ['gdpr', 'gdpr'],
  ['admin', 'admin'],
];

export const ROUTES: readonly Route[] = [
  ...INTERNAL_OWNERS.map(([segment, upstream]): Route => ({
    name: `internal-${segment}`,
    upstream,
    access: 'service',
    matches: under(`/api/v1/internal/${segment}`),
  })),
  { name: 'internal-auth', upstream: 'auth', access: 'service', matches: under('/api/v1/internal') },
  { name: 'admin', upstream: 'admin', access: 'admin', matches: under('/api/v1/admin') },
  // The payment provider's webhook: no JWT, credits-svc checks its signature.
  {
    name: 'credits-webhook',
    upstream: 'credits',
    access: 'public',
    matches: (p) => p.startsWith('/api/v1/credits/webhook'),
  },
  { name: 'credits', upstream: 'credits', access: 'bearer', matches: under('/api/v1/credits') },
  // Erasure status by capability token and the receipt signing key: public, gdpr-svc checks the token.
  { name: 'gdpr-public', upstream: 'gdpr', access: 'public', matches: under('/api/v1/gdpr') },
  { name: 'vault', upstream: 'vault', access: 'bearer', matches: under('/api/v1/me/encryption-vault') },
  { name: 'me', upstream: 'gdpr', access: 'bearer', matches: under('/api/v1/me') },
  { name: 'v1-auth-public', upstream: 'auth', access: 'public', matches: exactly(PUBLIC_V1_AUTH_PATHS) },
  { name: 'v1-auth', upstream: 'auth', access: 'bearer', matches: under('/api/v1/auth') },
  { name: 'better-auth', upstream: 'auth', access: 'public', matches: under('/api/auth') },
  { name: 'well-known', upstream: 'auth', access: 'public', matches: under('/.well-known') },
  // auth-svc's hosted login and consent pages (OIDC flows for Synapse and other relying parties).
  { name: 'hosted-auth', upstream: 'auth', access: 'public', matches: under('/auth') },
];

export function matchRoute(path: string): Route | undefined {
  for (const route of ROUTES) if (route.matches(path)) return route;
  return undefined;
}

/**
 * Paths where guessing or flooding hurts (credentials, account creation, emails sent, tokens
 * minted): they count against the tighter `auth` bucket as well as the general one.
 */
export const AUTH_TIER_PREFIXES: readonly string[] = [
  '/api/auth/sign-in',
  '/api/auth/sign-up',
  '/api/auth/magic-link',
  '/api/auth/request-password-reset',
  '/api/auth/reset-password',
  '/api/auth/two-factor/verify',
  '/api/auth/token',
  '/api/auth/oauth2/token',
  '/auth/login',
  '/auth/sign-up',
  '/auth/forgot-password',
  '/auth/reset-password',
  '/api/v1/auth/register',
  '/api/v1/auth/login',
  '/api/v1/auth/refresh',
  // Step-up authentication and the other password / code re-checks inside a session.
  '/api/v1/auth/reauth',
  '/api/v1/auth/2fa/',
  '/api/auth/change-password',
  '/api/auth/two-factor/',
  // Passkeys: the assertion and attestation checks, and the unauthenticated challenges (each writes a row).
  '/api/auth/passkey/verify-',
  '/api/auth/passkey/generate-authenticate-options',
];

export function rateTierOf(path: string): RateTier {
  // Plain prefixes on purpose: `/two-factor/verify` covers verify-totp, verify-otp, verify-backup-code.
  for (const prefix of AUTH_TIER_PREFIXES) if (path.startsWith(prefix)) return 'auth';
  return 'general';
}

/**
 * Refuses paths an upstream could resolve differently than the gateway matched them: dot segments,
 * encoded slashes, dots or backslashes, backslashes, NULs.
 */
const AMBIGUOUS = /(^|\/)\.\.?(\/|$)|%2e|%2f|%5c|%00|\\|\/\//i;

export function isAmbiguousPath(path: string): boolean {
  return AMBIGUOUS.test(path);
}
