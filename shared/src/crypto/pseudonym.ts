import { createHmac } from 'node:crypto';

/**
 * The keyed pseudonym of an erased user (`erased:` + HMAC-SHA256 of the id, hex): stable, so one service can recognise
 * the user again (its tombstone) and keep their retained rows grouped; not reversible, nor linkable across services,
 * without that service's secret; and in the `erased:` namespace, which no live user id can have. `hexChars` shortens
 * the digest for a service whose stored pseudonyms are shorter (admin-svc keeps 32).
 */
export function keyedPseudonym(secret: string, userId: string, hexChars = 64): string {
  return `erased:${createHmac('sha256', secret).update(userId, 'utf8').digest('hex').slice(0, hexChars)}`;
}
