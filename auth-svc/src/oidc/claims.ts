import type { Db } from '../db/types';
import { ensureMatrixLink, findMatrixLink, localpartOf, matrixLocalpartFromEmail } from './matrix';

interface ClaimUser {
  id: string;
  email: string;
  emailVerified?: boolean;
  name?: string | null;
}

/**
 * `preferred_username` is the user's Matrix localpart (recorded or derived from the email), so that
 * Synapse's `localpart_template: "{{ user.preferred_username }}"` yields exactly the stored Matrix id.
 */
async function preferredUsername(db: Db, user: ClaimUser, matrixTemplate: string | undefined, matrixClient: boolean) {
  if (matrixClient && matrixTemplate) return localpartOf(await ensureMatrixLink(db, matrixTemplate, user));
  const link = await findMatrixLink(db, user.id);
  return link ? localpartOf(link.matrixUserId) : matrixLocalpartFromEmail(user.email);
}

/** Profile and email claims by scope (OIDC Core §5.4), for the id_token and the userinfo answer. */
export async function identityClaims(
  db: Db,
  user: ClaimUser,
  scopes: readonly string[],
  opts: { matrixTemplate?: string; matrixClient: boolean },
): Promise<Record<string, unknown>> {
  const claims: Record<string, unknown> = {};
  // The Matrix link is recorded whenever the Synapse client gets an id_token, whatever the scopes.
  const username = await preferredUsername(db, user, opts.matrixTemplate, opts.matrixClient);
  if (scopes.includes('email')) {
    claims.email = user.email;
    claims.email_verified = user.emailVerified ?? false;
  }
  if (scopes.includes('profile')) {
    if (user.name) claims.name = user.name;
    claims.preferred_username = username;
  }
  return claims;
}

export const asClaimUser = (user: Record<string, unknown>): ClaimUser => ({
  id: String(user.id),
  email: String(user.email),
  emailVerified: user.emailVerified === true,
  name: typeof user.name === 'string' ? user.name : null,
});
