import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

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

const VERSION = 'v1';
const SALT = 'mana-auth/refresh-successor/v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function successorSeal(secret: string): SuccessorSeal {
  const keyFor = (spentToken: string) => Buffer.from(hkdfSync('sha256', secret, SALT, spentToken, 32));
  return {
    seal(spentToken, successor) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', keyFor(spentToken), iv);
      const body = Buffer.concat([cipher.update(successor, 'utf8'), cipher.final()]);
      return `${VERSION}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
    },
    open(spentToken, sealed) {
      const [version, payload] = sealed.split('.');
      if (version !== VERSION || !payload) return undefined;
      const raw = Buffer.from(payload, 'base64url');
      if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
      try {
        const decipher = createDecipheriv('aes-256-gcm', keyFor(spentToken), raw.subarray(0, IV_BYTES));
        decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
        return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
      } catch {
        return undefined;
      }
    },
  };
}
