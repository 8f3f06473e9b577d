import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '@mana/shared';
import {
  DEFAULT_KEK_ID,
  DEV_KEK_ID,
  IV_BYTES,
  MK_BYTES,
  VaultCryptoError,
  generateMasterKey,
  loadKeyring,
  unwrapMasterKey,
  wrapMasterKey,
  type WrappedKey,
} from '../src/domain/kek';

const kek = () => randomBytes(32).toString('base64');

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

function cryptoCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof VaultCryptoError) return err.code;
    throw err;
  }
  throw new Error('expected a VaultCryptoError');
}

describe('KEK loading', () => {
  it('loads a valid 32-byte base64 KEK as kek-1 and never shows its bytes', () => {
    const secret = kek();
    const keyring = loadKeyring({ NODE_ENV: 'production', MANA_AUTH_KEK: secret });
    expect(keyring.activeId).toBe(DEFAULT_KEK_ID);
    expect(keyring.devFallback).toBe(false);
    expect(JSON.stringify(keyring)).not.toContain(secret);
    expect(JSON.stringify(keyring)).toBe(JSON.stringify({ active: 'kek-1', ids: ['kek-1'] }));
  });

  it('refuses a KEK of the wrong length, naming the variable but not the value', () => {
    const short = randomBytes(16).toString('base64');
    const err = configError(() => loadKeyring({ NODE_ENV: 'production', MANA_AUTH_KEK: short }));
    expect(err.problems).toEqual([expect.stringMatching(/^MANA_AUTH_KEK: must be base64 of exactly 32 bytes/)]);
    expect(err.message).not.toContain(short);
    // Also in development: a malformed key is a mistake, not a request for the fallback.
    expect(() => loadKeyring({ NODE_ENV: 'development', MANA_AUTH_KEK: randomBytes(33).toString('base64') })).toThrow(ConfigError);
  });

  it('refuses text that is not base64', () => {
    const err = configError(() => loadKeyring({ NODE_ENV: 'production', MANA_AUTH_KEK: '!'.repeat(44) }));
    expect(err.problems[0]).toMatch(/^MANA_AUTH_KEK:/);
  });

  it('stops a production boot when the KEK is missing', () => {
    const err = configError(() => loadKeyring({ NODE_ENV: 'production' }));
    expect(err.problems).toEqual(['MANA_AUTH_KEK: required in production']);
  });

  it('falls back to an all-zero KEK in development, with a loud warning', () => {
    const warn = vi.fn();
    const keyring = loadKeyring({ NODE_ENV: 'development' }, { warn });
    expect(keyring.devFallback).toBe(true);
    expect(keyring.activeId).toBe(DEV_KEK_ID);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/ALL-ZERO/);
    // It really is the zero key: the same wrap opens with an explicitly configured zero KEK.
    const mk = generateMasterKey();
    const wrap = wrapMasterKey(keyring, 'u1', mk);
    const zero = loadKeyring({ MANA_AUTH_KEKS: `${DEV_KEK_ID}:${Buffer.alloc(32).toString('base64')}` });
    expect(unwrapMasterKey(zero, 'u1', wrap).equals(mk)).toBe(true);
  });

  it('loads several KEKs by id and uses the active one for new wraps', () => {
    const keyring = loadKeyring({ MANA_AUTH_KEKS: `old:${kek()}, new:${kek()}`, MANA_AUTH_KEK_ACTIVE: 'new' });
    expect(keyring.ids()).toEqual(['old', 'new']);
    expect(wrapMasterKey(keyring, 'u1', generateMasterKey()).kekId).toBe('new');
    expect(wrapMasterKey(keyring, 'u1', generateMasterKey(), 'old').kekId).toBe('old');
  });

  it('refuses an ambiguous or inconsistent keyring', () => {
    expect(configError(() => loadKeyring({ MANA_AUTH_KEKS: `a:${kek()},b:${kek()}` })).problems).toEqual([
      'MANA_AUTH_KEK_ACTIVE: required when more than one KEK is configured',
    ]);
    expect(configError(() => loadKeyring({ MANA_AUTH_KEKS: `a:${kek()}`, MANA_AUTH_KEK_ACTIVE: 'b' })).problems[0]).toMatch(
      /^MANA_AUTH_KEK_ACTIVE: b is not one/,
    );
    expect(configError(() => loadKeyring({ MANA_AUTH_KEKS: `a:${kek()},a:${kek()}`, MANA_AUTH_KEK_ACTIVE: 'a' })).problems[0]).toMatch(
      /given twice/,
    );
    expect(configError(() => loadKeyring({ MANA_AUTH_KEKS: `bad id:${kek()}` })).problems[0]).toMatch(/entry 1 must be id:base64/);
    // MANA_AUTH_KEK is kek-1; naming kek-1 again in the list is a conflict.
    expect(configError(() => loadKeyring({ MANA_AUTH_KEK: kek(), MANA_AUTH_KEKS: `kek-1:${kek()}` })).problems[0]).toMatch(/given twice/);
  });
});

describe('wrap / unwrap', () => {
  const keyring = loadKeyring({ MANA_AUTH_KEKS: `k1:${kek()},k2:${kek()}`, MANA_AUTH_KEK_ACTIVE: 'k1' });

  it('round-trips a master key', () => {
    const mk = generateMasterKey();
    expect(mk.length).toBe(MK_BYTES);
    const wrap = wrapMasterKey(keyring, 'user-a', mk);
    expect(wrap.iv.length).toBe(IV_BYTES);
    expect(wrap.wrappedMk.length).toBe(48);
    expect(wrap.wrappedMk.subarray(0, 32).equals(mk)).toBe(false);
    expect(unwrapMasterKey(keyring, 'user-a', wrap).equals(mk)).toBe(true);
  });

  it('uses a fresh IV for every wrap of the same key', () => {
    const mk = generateMasterKey();
    const ivs = new Set(Array.from({ length: 200 }, () => wrapMasterKey(keyring, 'user-a', mk).iv.toString('hex')));
    expect(ivs.size).toBe(200);
    expect(generateMasterKey().equals(generateMasterKey())).toBe(false);
  });

  it('refuses a master key of the wrong length', () => {
    expect(cryptoCode(() => wrapMasterKey(keyring, 'user-a', randomBytes(31)))).toBe('MK_LENGTH');
    expect(cryptoCode(() => wrapMasterKey(keyring, 'user-a', randomBytes(33)))).toBe('MK_LENGTH');
    const wrap = wrapMasterKey(keyring, 'user-a', generateMasterKey());
    expect(cryptoCode(() => unwrapMasterKey(keyring, 'user-a', { ...wrap, wrappedMk: wrap.wrappedMk.subarray(1) }))).toBe('MK_LENGTH');
  });

  it('refuses an IV of the wrong length', () => {
    const wrap = wrapMasterKey(keyring, 'user-a', generateMasterKey());
    expect(cryptoCode(() => unwrapMasterKey(keyring, 'user-a', { ...wrap, iv: randomBytes(16) }))).toBe('IV_LENGTH');
    expect(cryptoCode(() => unwrapMasterKey(keyring, 'user-a', { ...wrap, iv: randomBytes(8) }))).toBe('IV_LENGTH');
  });

  it('detects tampered ciphertext, tag and IV', () => {
    const wrap = wrapMasterKey(keyring, 'user-a', generateMasterKey());
    for (const index of [0, 31, 32, 47]) {
      const wrappedMk = Buffer.from(wrap.wrappedMk);
      wrappedMk[index] = (wrappedMk[index] ?? 0) ^ 0x01;
      expect(cryptoCode(() => unwrapMasterKey(keyring, 'user-a', { ...wrap, wrappedMk }))).toBe('UNWRAP_FAILED');
    }
    const iv = Buffer.from(wrap.iv);
    iv[0] = (iv[0] ?? 0) ^ 0x80;
    expect(cryptoCode(() => unwrapMasterKey(keyring, 'user-a', { ...wrap, iv }))).toBe('UNWRAP_FAILED');
  });

  it('does not open with another KEK, nor when the row is relabelled to another KEK id', () => {
    const wrap = wrapMasterKey(keyring, 'user-a', generateMasterKey());
    const other = loadKeyring({ MANA_AUTH_KEKS: `k1:${kek()}` });
    expect(cryptoCode(() => unwrapMasterKey(other, 'user-a', wrap))).toBe('UNWRAP_FAILED');
    expect(cryptoCode(() => unwrapMasterKey(keyring, 'user-a', { ...wrap, kekId: 'k2' }))).toBe('UNWRAP_FAILED');
    expect(cryptoCode(() => unwrapMasterKey(keyring, 'user-a', { ...wrap, kekId: 'gone' }))).toBe('KEK_UNKNOWN');
  });

  it("refuses a wrap copied onto another user's row (user id bound as AAD)", () => {
    const wrap: WrappedKey = wrapMasterKey(keyring, 'user-a', generateMasterKey());
    expect(cryptoCode(() => unwrapMasterKey(keyring, 'user-b', wrap))).toBe('UNWRAP_FAILED');
    expect(cryptoCode(() => unwrapMasterKey(keyring, 'user-a', { ...wrap, formatVersion: 2 }))).toBe('FORMAT_UNSUPPORTED');
  });

  it('refuses an empty user id', () => {
    expect(cryptoCode(() => wrapMasterKey(keyring, '', generateMasterKey()))).toBe('USER_REQUIRED');
  });
});
