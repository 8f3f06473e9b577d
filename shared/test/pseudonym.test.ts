import { describe, expect, it } from 'vitest';
import { keyedPseudonym } from '../src/crypto/pseudonym';

/**
 * The pseudonyms stored by admin-svc, credits-svc and vault-svc (retained rows, tombstones) must keep matching what
 * the code computes, or an erased user's tombstone stops working: pinned against a vector computed independently.
 */
describe('keyedPseudonym', () => {
  const secret = 'pinned-secret-0123456789abcdef0123456789';
  const digest = '15d7b8a021a36ea3e97de0c937aadae5236ab484e485cb619f543eb3da81efa8'; // HMAC-SHA256(secret, 'user-123')

  it('is erased: and the hex HMAC-SHA256 of the id (credits-svc, vault-svc)', () => {
    expect(keyedPseudonym(secret, 'user-123')).toBe(`erased:${digest}`);
  });

  it('keeps the first hex characters asked for (admin-svc stores 32)', () => {
    expect(keyedPseudonym(secret, 'user-123', 32)).toBe(`erased:${digest.slice(0, 32)}`);
  });

  it('differs per secret and per user', () => {
    expect(keyedPseudonym(`${secret}x`, 'user-123')).not.toBe(keyedPseudonym(secret, 'user-123'));
    expect(keyedPseudonym(secret, 'user-124')).not.toBe(keyedPseudonym(secret, 'user-123'));
  });
});
