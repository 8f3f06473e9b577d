import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

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

/** AES-256-GCM: `v1.<iv>.<tag>.<ciphertext>`, base64url parts. */
export function seal(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), ct].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

export function unseal(key: Buffer, sealed: string): string {
  const [version, iv, tag, ct] = sealed.split('.');
  if (version !== 'v1' || !iv || !tag || ct === undefined) throw new Error('unknown sealed key format');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
}

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
