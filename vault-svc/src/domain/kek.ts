import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { ConfigError } from '@mana/shared';
import { decodeBase64 } from './base64';

export const KEK_BYTES = 32;
export const MK_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
/** Wrap format: AES-256-GCM, ciphertext ‖ tag, AAD = JSON ["mana-vault-mk", version, kekId, userId]. */
export const FORMAT_VERSION = 1;
/** The id of the KEK given as MANA_AUTH_KEK (the single-key shorthand). */
export const DEFAULT_KEK_ID = 'kek-1';
/** The id stamped on rows wrapped with the development all-zero KEK, so they are easy to find and re-wrap. */
export const DEV_KEK_ID = 'dev-zero';
const KEK_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface KekEnv {
  NODE_ENV?: string;
  /** base64 of 32 bytes; shorthand for `MANA_AUTH_KEKS=kek-1:<base64>`. */
  MANA_AUTH_KEK?: string;
  /** `id1:base64,id2:base64` — every KEK a row may still be wrapped with. */
  MANA_AUTH_KEKS?: string;
  /** Which id new wraps use (required when more than one KEK is configured). */
  MANA_AUTH_KEK_ACTIVE?: string;
}

export type VaultCryptoCode = 'MK_LENGTH' | 'IV_LENGTH' | 'KEK_UNKNOWN' | 'FORMAT_UNSUPPORTED' | 'UNWRAP_FAILED' | 'USER_REQUIRED';

/** A wrap or unwrap that cannot be done; never carries key bytes. */
export class VaultCryptoError extends Error {
  constructor(
    readonly code: VaultCryptoCode,
    message: string,
  ) {
    super(message);
    this.name = 'VaultCryptoError';
  }
}

/** The configured KEKs by id (held as KeyObjects, never logged) and the one new wraps use. */
export class Keyring {
  constructor(
    private readonly keys: ReadonlyMap<string, KeyObject>,
    readonly activeId: string,
    readonly devFallback = false,
  ) {
    if (!keys.has(activeId)) throw new Error(`active KEK ${activeId} is not in the keyring`);
  }

  ids(): string[] {
    return [...this.keys.keys()];
  }

  has(id: string): boolean {
    return this.keys.has(id);
  }

  key(id: string): KeyObject {
    const key = this.keys.get(id);
    if (!key) throw new VaultCryptoError('KEK_UNKNOWN', `KEK ${id} is not configured`);
    return key;
  }

  /** Only ids and which is active: safe to log. */
  toJSON(): { active: string; ids: string[] } {
    return { active: this.activeId, ids: this.ids() };
  }
}

function parseKek(name: string, text: string, problems: string[]): KeyObject | undefined {
  const bytes = decodeBase64(text.trim());
  if (!bytes || bytes.length !== KEK_BYTES) {
    bytes?.fill(0);
    problems.push(`${name}: must be base64 of exactly ${KEK_BYTES} bytes (openssl rand -base64 32)`);
    return undefined;
  }
  const key = createSecretKey(bytes); // holds its own copy
  bytes.fill(0);
  return key;
}

/**
 * Loads the KEKs once at boot. Production refuses a missing or malformed KEK (ConfigError naming the
 * variable, never its value); development and test fall back to an all-zero KEK with a loud warning.
 */
export function loadKeyring(env: KekEnv, logger?: Pick<Logger, 'warn'>): Keyring {
  const problems: string[] = [];
  const keys = new Map<string, KeyObject>();
  const single = env.MANA_AUTH_KEK?.trim() || undefined;
  const list = env.MANA_AUTH_KEKS?.trim() || undefined;
  if (single) {
    const key = parseKek('MANA_AUTH_KEK', single, problems);
    if (key) keys.set(DEFAULT_KEK_ID, key);
  }
  if (list) {
    for (const [i, entry] of list
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)
      .entries()) {
      const sep = entry.indexOf(':');
      const id = sep > 0 ? entry.slice(0, sep) : '';
      if (!KEK_ID.test(id)) {
        problems.push(`MANA_AUTH_KEKS: entry ${i + 1} must be id:base64 with an id of [A-Za-z0-9._-]{1,64}`);
        continue;
      }
      if (keys.has(id)) {
        problems.push(`MANA_AUTH_KEKS: KEK id ${id} is given twice`);
        continue;
      }
      const key = parseKek(`MANA_AUTH_KEKS (${id})`, entry.slice(sep + 1), problems);
      if (key) keys.set(id, key);
    }
  }
  const active = env.MANA_AUTH_KEK_ACTIVE?.trim() || undefined;
  if (active && !keys.has(active) && problems.length === 0)
    problems.push(`MANA_AUTH_KEK_ACTIVE: ${active} is not one of the configured KEK ids`);
  if (!active && keys.size > 1) problems.push('MANA_AUTH_KEK_ACTIVE: required when more than one KEK is configured');

  if (!single && !list) {
    if (env.NODE_ENV === 'production') problems.push('MANA_AUTH_KEK: required in production');
    else {
      logger?.warn(
        '!!! MANA_AUTH_KEK is not set: using an ALL-ZERO key-encryption key. Every master key wrapped now is ' +
          'readable by anyone with the database. Development only — set MANA_AUTH_KEK (openssl rand -base64 32). !!!',
      );
      return new Keyring(new Map([[DEV_KEK_ID, createSecretKey(Buffer.alloc(KEK_BYTES))]]), DEV_KEK_ID, true);
    }
  }
  if (problems.length > 0) throw new ConfigError('vault-svc', problems);
  return new Keyring(keys, active ?? [...keys.keys()][0]);
}

export interface WrappedKey {
  wrappedMk: Buffer;
  iv: Buffer;
  kekId: string;
  formatVersion: number;
}

/** Binds the wrap to its row: a wrap copied onto another user, or relabelled to another KEK, fails to open. */
function additionalData(formatVersion: number, kekId: string, userId: string): Buffer {
  return Buffer.from(JSON.stringify(['mana-vault-mk', formatVersion, kekId, userId]), 'utf8');
}

function requireUser(userId: string): void {
  if (!userId) throw new VaultCryptoError('USER_REQUIRED', 'a user id is required');
}

export function generateMasterKey(): Buffer {
  return randomBytes(MK_BYTES);
}

/** AES-256-GCM under the given (default: active) KEK with a fresh random 12-byte IV. */
export function wrapMasterKey(keyring: Keyring, userId: string, masterKey: Uint8Array, kekId = keyring.activeId): WrappedKey {
  requireUser(userId);
  if (masterKey.length !== MK_BYTES) throw new VaultCryptoError('MK_LENGTH', `a master key is ${MK_BYTES} bytes`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyring.key(kekId), iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(additionalData(FORMAT_VERSION, kekId, userId));
  const wrappedMk = Buffer.concat([cipher.update(masterKey), cipher.final(), cipher.getAuthTag()]);
  return { wrappedMk, iv, kekId, formatVersion: FORMAT_VERSION };
}

export function unwrapMasterKey(keyring: Keyring, userId: string, wrapped: WrappedKey): Buffer {
  requireUser(userId);
  if (wrapped.formatVersion !== FORMAT_VERSION)
    throw new VaultCryptoError('FORMAT_UNSUPPORTED', `wrap format ${wrapped.formatVersion} is not supported`);
  if (wrapped.iv.length !== IV_BYTES) throw new VaultCryptoError('IV_LENGTH', `an IV is ${IV_BYTES} bytes`);
  if (wrapped.wrappedMk.length !== MK_BYTES + TAG_BYTES)
    throw new VaultCryptoError('MK_LENGTH', `a wrapped master key is ${MK_BYTES + TAG_BYTES} bytes`);
  const key = keyring.key(wrapped.kekId);
  const decipher = createDecipheriv('aes-256-gcm', key, wrapped.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(additionalData(wrapped.formatVersion, wrapped.kekId, userId));
  decipher.setAuthTag(wrapped.wrappedMk.subarray(MK_BYTES));
  try {
    return Buffer.concat([decipher.update(wrapped.wrappedMk.subarray(0, MK_BYTES)), decipher.final()]);
  } catch {
    throw new VaultCryptoError('UNWRAP_FAILED', `the wrap does not open with KEK ${wrapped.kekId} for this user`);
  }
}
