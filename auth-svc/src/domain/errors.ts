import { AppError } from '@mana/shared';
import type { PasswordViolation } from './passwords';

/**
 * auth-svc's own error codes on /api/v1 (clients switch on `error`), listed in the README. Better
 * Auth's and its plugins' codes on /api/auth are its own (`src/auth/plugins/*`); the /api/v1 routes
 * pass a 4xx of theirs through unchanged (`toV1Error`).
 */
export const AUTH_ERRORS = {
  /** Same answer for an unknown email, a wrong password and a locked account (no user enumeration). */
  invalidCredentials: () => new AppError('INVALID_CREDENTIALS', 401, 'Invalid email or password'),
  emailNotVerified: () => new AppError('EMAIL_NOT_VERIFIED', 403, 'Confirm your email address first'),
  accountBanned: (message = 'This account is banned') => new AppError('ACCOUNT_BANNED', 403, message),
  passwordRule: (violation: PasswordViolation) => new AppError(violation.code, 400, violation.message),
  invalidRefreshToken: () => new AppError('INVALID_REFRESH_TOKEN', 401, 'The refresh token is invalid or expired'),
  refreshTokenReused: () => new AppError('REFRESH_TOKEN_REUSED', 401, 'This refresh token was already used; the session has been ended'),
  invalidChallenge: () => new AppError('INVALID_CHALLENGE', 401, 'The sign-in challenge is invalid or expired; sign in again'),
  invalidTwoFactorCode: () => new AppError('INVALID_TWO_FACTOR_CODE', 401, 'The code is invalid'),
  sessionNotFound: (message = 'No such session') => new AppError('SESSION_NOT_FOUND', 404, message),
  apiKeyNotFound: () => new AppError('API_KEY_NOT_FOUND', 404, 'No such API key'),
  apiKeyLimit: (max = 50) => new AppError('API_KEY_LIMIT', 409, `An account holds at most ${max} API keys: delete one first`),
  invalidCursor: () => new AppError('INVALID_CURSOR', 400, 'The cursor is not one this API returned'),
  userNotFound: () => new AppError('USER_NOT_FOUND', 404, 'No such user'),
  lastAdmin: () => new AppError('LAST_ADMIN', 409, 'The last admin cannot be demoted'),
  reauthFailed: () => new AppError('REAUTH_FAILED', 401, 'The password or code is not correct'),
  twoFactorNotEnabled: () =>
    new AppError('TWO_FACTOR_NOT_ENABLED', 400, 'Two-factor authentication is off for this account: confirm with the password'),
  /** Better Auth answered a sign-in with a second factor but set no two-factor cookie (never expected). */
  twoFactorStartFailed: () => new AppError('TWO_FACTOR_START_FAILED', 500, 'Second factor could not be started'),
  /** Better Auth reported a session that is not in the table (never expected). */
  sessionNotCreated: () => new AppError('SESSION_NOT_CREATED', 500, 'Session could not be created'),
} as const;
