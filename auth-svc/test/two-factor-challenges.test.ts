import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sealCookie, unsealCookie } from '../src/domain/two-factor-challenges';

/** How the previous release sealed a challenge's cookie (`iv.ct.tag`), kept here as the upgrade's fixture. */
function previousReleaseSeal(challenge: string, plain: string): string {
  const iv = randomBytes(12);
  const key = createHash('sha256').update(`key:${challenge}`).digest();
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return [iv, ct, cipher.getAuthTag()].map((b) => b.toString('base64url')).join('.');
}

describe('the sealed cookie of a pending second factor', () => {
  const challenge = randomBytes(32).toString('base64url');
  const cookie = 'better-auth.two_factor=abc.def';

  it('opens with its own challenge only, and not once tampered with', () => {
    const sealed = sealCookie(challenge, cookie);
    expect(sealed.startsWith('v1.')).toBe(true);
    expect(unsealCookie(challenge, sealed)).toBe(cookie);
    expect(unsealCookie(randomBytes(32).toString('base64url'), sealed)).toBeUndefined();
    const parts = sealed.split('.');
    const flipped = Buffer.from(parts[3] ?? '', 'base64url');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(unsealCookie(challenge, [...parts.slice(0, 3), flipped.toString('base64url')].join('.'))).toBeUndefined();
    expect(unsealCookie(challenge, 'not.sealed')).toBeUndefined();
  });

  it('still opens a challenge the previous release sealed (a rolling upgrade), and only with its challenge', () => {
    const legacy = previousReleaseSeal(challenge, cookie);
    expect(unsealCookie(challenge, legacy)).toBe(cookie);
    expect(unsealCookie(randomBytes(32).toString('base64url'), legacy)).toBeUndefined();
  });
});
