import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** Keys derived from GDPR_SECRET, one per purpose, so neither use weakens the other. */
export interface GdprSecrets {
  /** Keyed hash of a user id: stable (a rate limit, the receipt's `sub`), useless without the secret. */
  subject: (userId: string) => string;
  sealKey: Buffer;
}

export function deriveSecrets(secret: string): GdprSecrets {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', secret, 'mana-gdpr', info, 32));
  const subjectKey = derive('subject-hash/v1');
  return {
    subject: (userId) => createHmac('sha256', subjectKey).update(userId, 'utf8').digest('base64url'),
    sealKey: derive('receipt-key-seal/v1'),
  };
}

// The receipt key is sealed with the shared AES-256-GCM helper (`v1.<iv>.<tag>.<ciphertext>`).
export { seal, unseal } from '@mana/shared';

/** A capability token for the status URL and the hash that is stored instead of it. */
export function newCapabilityToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

export const hashToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('base64url');

/** Whether `token` matches one of the stored hashes; every comparison runs, in constant time each. */
export function tokenMatches(token: string, hashes: readonly string[]): boolean {
  const given = Buffer.from(hashToken(token), 'base64url');
  let match = false;
  for (const h of hashes) {
    const stored = Buffer.from(h, 'base64url');
    if (stored.length === given.length && timingSafeEqual(stored, given)) match = true;
  }
  return match;
}
