import { providerQuerySigned } from '../auth/better-auth-adapter';

/** Parameters the provider adds when it signs a query for the login page; never sent back to /authorize. */
const SIGNING_PARAMS = ['sig', 'exp', 'ba_iat', 'ba_pl', 'ba_param'];

/** How old a signed query may be for a fresh sign-in to satisfy its `prompt=login` / `max_age=0`. */
const MAX_RESUME_AGE_MS = 3600_000;

/** A query the provider signed within the last hour (its own `exp` is too short for a mailbox trip). */
export async function genuineSignedQuery(oauthQuery: string, secret: string, now = Date.now()): Promise<boolean> {
  const issuedAt = Number(new URLSearchParams(oauthQuery).get('ba_iat'));
  return (
    Number.isFinite(issuedAt) &&
    issuedAt > 0 &&
    issuedAt <= now + 60_000 &&
    now - issuedAt <= MAX_RESUME_AGE_MS &&
    (await providerQuerySigned(oauthQuery, secret))
  );
}

/**
 * Where a browser resumes a pending authorization after signing in outside the login form (a magic
 * link) or after finishing sign-up or a password reset: the authorization endpoint with the
 * client's original parameters, which checks everything again and answers with a code, the consent
 * page or the login page. A sign-in that happened after the provider asked for one satisfies
 * `prompt=login` and `max_age` (as the provider does after its own sign-in form), but only for a
 * genuinely signed query.
 */
export async function resumeAuthorizeUrl(
  base: string,
  oauthQuery: string,
  secret: string,
  sessionCreatedAt: Date | undefined,
  now = Date.now(),
): Promise<string> {
  const issuedAt = Number(new URLSearchParams(oauthQuery).get('ba_iat'));
  const query = new URLSearchParams(oauthQuery);
  for (const name of SIGNING_PARAMS) query.delete(name);
  const freshSignIn =
    sessionCreatedAt !== undefined && sessionCreatedAt.getTime() >= issuedAt && (await genuineSignedQuery(oauthQuery, secret, now));
  if (freshSignIn) {
    const prompts = (query.get('prompt') ?? '').split(' ').filter((p) => p && p !== 'login');
    if (prompts.length) query.set('prompt', prompts.join(' '));
    else query.delete('prompt');
    query.delete('max_age');
  }
  return `${base}/api/auth/oauth2/authorize?${query.toString()}`;
}

/**
 * How a form hands a pending authorization to a Better Auth sign-in: as `oauth_query` while the
 * provider still accepts it. Its `exp` is the code lifetime (60 s by default), shorter than a user
 * may take on the login and two-factor pages; past it, a genuine query is left out and the page
 * resumes the authorization itself once the sign-in succeeded (`resume`).
 */
export async function pendingAuthorization(
  oauthQuery: string,
  secret: string,
  now = Date.now(),
): Promise<{ body: { oauth_query?: string }; resume: boolean }> {
  if (!oauthQuery) return { body: {}, resume: false };
  const exp = Number(new URLSearchParams(oauthQuery).get('exp'));
  if (!(Number.isFinite(exp) && exp * 1000 < now) || !(await genuineSignedQuery(oauthQuery, secret, now)))
    return { body: { oauth_query: oauthQuery }, resume: false };
  return { body: {}, resume: true };
}
