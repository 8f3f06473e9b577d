import { createHmac } from 'node:crypto';

/**
 * The keyed pseudonym of an erased user: stable (one user's audit entries stay grouped), not reversible
 * without the secret, and in the `erased:` namespace no live user id can have.
 */
export function pseudonymOf(secret: string, userId: string): string {
  return `erased:${createHmac('sha256', secret).update(userId, 'utf8').digest('hex').slice(0, 32)}`;
}
