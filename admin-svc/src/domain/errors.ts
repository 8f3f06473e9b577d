import { AppError } from '@mana/shared';

/** admin-svc's own error codes (clients switch on `error`). */
export const ADMIN_ERRORS = {
  userNotFound: () => new AppError('USER_NOT_FOUND', 404, 'No such user in the directory'),
  unknownTier: (tiers: readonly string[]) => new AppError('UNKNOWN_TIER', 400, `Unknown tier; one of: ${tiers.join(', ')}`),
  cannotTargetSelf: () => new AppError('CANNOT_TARGET_SELF', 400, 'Admins cannot do this to their own account'),
  useSelfService: () => new AppError('USE_SELF_SERVICE', 400, 'Delete your own account through DELETE /api/v1/me/data'),
  lastAdmin: () => new AppError('LAST_ADMIN', 409, 'The last admin cannot be demoted'),
  invalidCursor: () => new AppError('INVALID_CURSOR', 400, 'The cursor is not one this API handed out'),
  sourceUnavailable: (source: string) => new AppError('SOURCE_UNAVAILABLE', 503, `${source} is not reachable right now`, { expose: true }),
} as const;
