import { describe, expect, it } from 'vitest';
import { successorSeal } from '../src/domain/refresh-seal';

const SECRET = 'test-only-better-auth-secret-0123456789abcdef';

describe('successorSeal', () => {
  const seal = successorSeal(SECRET);

  it('opens what it sealed for the same spent token, and hides the successor', () => {
    const sealed = seal.seal('spent-token-a', 'successor-token-1');
    expect(sealed).not.toContain('successor-token-1');
    expect(sealed).not.toContain(Buffer.from('successor-token-1').toString('base64url'));
    expect(seal.open('spent-token-a', sealed)).toBe('successor-token-1');
    // Random IV: sealing twice gives two different values.
    expect(seal.seal('spent-token-a', 'successor-token-1')).not.toBe(sealed);
  });

  it('refuses another token, another secret, a tampered value and garbage', () => {
    const sealed = seal.seal('spent-token-a', 'successor-token-1');
    expect(seal.open('spent-token-b', sealed)).toBeUndefined();
    expect(successorSeal(`${SECRET}x`).open('spent-token-a', sealed)).toBeUndefined();
    const parts = sealed.split('.');
    const raw = Buffer.from(parts[3] ?? '', 'base64url');
    raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
    expect(seal.open('spent-token-a', [...parts.slice(0, 3), raw.toString('base64url')].join('.'))).toBeUndefined();
    for (const bad of ['', 'v1.', 'v2.abc', 'v1.AAAA', 'no-dot']) expect(seal.open('spent-token-a', bad)).toBeUndefined();
  });
});
