import { hkdfSync } from 'node:crypto';
import { seal, unseal } from '@mana/shared';

/**
 * Seals the successor of a spent refresh token next to it, so a double-submit inside the grace window
 * can be answered with the same successor (one token chain per session). The key is derived from
 * BETTER_AUTH_SECRET *and* the spent token: a copy of the database alone opens nothing (only token
 * digests are stored), and the secret alone opens nothing either.
 */
export interface SuccessorSeal {
  seal(spentToken: string, successor: string): string;
  /** The successor, or undefined when the sealed value was not made for this token under this secret. */
  open(spentToken: string, sealed: string): string | undefined;
}

const SALT = 'mana-auth/refresh-successor/v1';

export function successorSeal(secret: string): SuccessorSeal {
  const keyFor = (spentToken: string) => Buffer.from(hkdfSync('sha256', secret, SALT, spentToken, 32));
  return {
    seal: (spentToken, successor) => seal(keyFor(spentToken), successor),
    open(spentToken, sealed) {
      try {
        return unseal(keyFor(spentToken), sealed);
      } catch {
        return undefined;
      }
    },
  };
}
