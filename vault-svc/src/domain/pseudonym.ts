import { createHmac } from 'node:crypto';

/**
 * The keyed pseudonym of an erased user's tombstone (`vault.erased_users`): stable, so POST /init can recognise the
 * user again, not reversible without VAULT_PSEUDONYM_SECRET, and in the `erased:` namespace no live user id can have.
 * Used for the tombstone only: the audit trail keeps its random pseudonyms, which nothing links to this one.
 */
export function pseudonymFor(secret: string, userId: string): string {
  return `erased:${createHmac('sha256', secret).update(userId, 'utf8').digest('hex')}`;
}
