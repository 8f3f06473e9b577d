import { readFileSync } from 'node:fs';

/** ASVS 2.1.2: at most 128 characters, checked before any hashing (scrypt on a huge input is a DoS). */
export const PASSWORD_MAX_LENGTH = 128;

export type PasswordRule = 'PASSWORD_TOO_SHORT' | 'PASSWORD_TOO_LONG' | 'PASSWORD_TOO_COMMON';

export interface PasswordViolation {
  code: PasswordRule;
  message: string;
}

let common: Set<string> | undefined;

/** The shipped list, loaded once on first use (lower-cased, comments skipped). */
function commonPasswords(): Set<string> {
  common ??= new Set(
    readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8')
      .split('\n')
      .map((l) => l.trim().toLowerCase())
      .filter((l) => l.length > 0 && !l.startsWith('#')),
  );
  return common;
}

/**
 * OWASP ASVS 2.1: length only (counted in Unicode code points, spaces allowed), no composition rules,
 * and no password from the common list. Returns the first rule that fails.
 */
export function checkPassword(password: string, minLength: number): PasswordViolation | undefined {
  const length = [...password].length;
  if (length > PASSWORD_MAX_LENGTH)
    return { code: 'PASSWORD_TOO_LONG', message: `Password must be at most ${PASSWORD_MAX_LENGTH} characters` };
  if (length < minLength) return { code: 'PASSWORD_TOO_SHORT', message: `Password must be at least ${minLength} characters` };
  if (commonPasswords().has(password.toLowerCase()))
    return { code: 'PASSWORD_TOO_COMMON', message: 'This password is too common; choose a less predictable one' };
  return undefined;
}
