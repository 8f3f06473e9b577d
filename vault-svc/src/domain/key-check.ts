import { createHmac, timingSafeEqual } from 'node:crypto';
import { decodeBase64 } from './base64';

/**
 * The fixed label of the key check value. A client computes the same value from the master key it holds:
 * `base64(HMAC-SHA256(key = MK, message = "mana-vault key-check v1"))`.
 */
export const KEY_CHECK_LABEL = 'mana-vault key-check v1';
export const KEY_CHECK_BYTES = 32;

/** The key check value of a master key (a PRF output: it tells nothing about the key). */
export function keyCheckOf(masterKey: Uint8Array): Buffer {
  return createHmac('sha256', masterKey).update(KEY_CHECK_LABEL, 'utf8').digest();
}

/** Whether the client's base64 check value equals the stored one (constant time; missing or malformed = no). */
export function keyCheckMatches(expected: Buffer | null, given: string | undefined): boolean {
  if (!expected || given === undefined) return false;
  const decoded = decodeBase64(given);
  if (!decoded || decoded.length !== KEY_CHECK_BYTES || expected.length !== KEY_CHECK_BYTES) return false;
  return timingSafeEqual(decoded, expected);
}
