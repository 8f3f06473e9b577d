import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AppError } from '@mana/shared';
import { AUTH_ERRORS } from '../src/domain/errors';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** Each factory with the arguments it needs. */
const made = Object.entries(AUTH_ERRORS).map(([name, make]): [string, AppError] => [
  name,
  name === 'passwordRule' ? AUTH_ERRORS.passwordRule({ code: 'PASSWORD_TOO_SHORT', message: 'too short' }) : (make as () => AppError)(),
]);

describe('AUTH_ERRORS', () => {
  it.each(made)('%s is an AppError with an UPPER_SNAKE code, listed in the README errors table', (_name, err) => {
    expect(err).toBeInstanceOf(AppError);
    expect(err.code).toMatch(/^[A-Z][A-Z0-9_]+$/);
    expect(README).toMatch(new RegExp(`\\| \`${err.code}\`[^\\n]*\\| ${err.status} \\|`));
  });

  it('keeps the detail of a 5xx private and shows a 4xx message', () => {
    expect([AUTH_ERRORS.twoFactorStartFailed(), AUTH_ERRORS.sessionNotCreated()].map((e) => [e.code, e.status, e.expose])).toEqual([
      ['TWO_FACTOR_START_FAILED', 500, false],
      ['SESSION_NOT_CREATED', 500, false],
    ]);
    expect(AUTH_ERRORS.invalidCredentials()).toMatchObject({ code: 'INVALID_CREDENTIALS', status: 401, expose: true });
  });
});
