import { keyedPseudonym } from '@mana/shared';

/**
 * The keyed pseudonym of an erased user's tombstone (`vault.erased_users`, VAULT_PSEUDONYM_SECRET): POST /init
 * recognises the user again. Used for the tombstone only: the audit trail keeps its random pseudonyms, which nothing
 * links to this one.
 */
export function pseudonymFor(secret: string, userId: string): string {
  return keyedPseudonym(secret, userId);
}
