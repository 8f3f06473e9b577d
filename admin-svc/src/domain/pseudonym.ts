import { keyedPseudonym } from '@mana/shared';

/**
 * The keyed pseudonym of an erased user (ADMIN_PSEUDONYM_SECRET): stable (one user's audit entries stay grouped, the
 * tombstone recognises the user), not reversible without the secret. 32 hex characters: the length admin-svc has
 * always stored, which its tombstones must keep matching.
 */
export function pseudonymOf(secret: string, userId: string): string {
  return keyedPseudonym(secret, userId, 32);
}
