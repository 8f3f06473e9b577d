import { AppError } from '@mana/shared';

/** The vault's own error codes (clients switch on `error`). */
export const VAULT_ERRORS = {
  notFound: () => new AppError('VAULT_NOT_FOUND', 404, 'No encryption vault exists for this user; call POST /init first'),
  erased: () => new AppError('VAULT_ERASED', 410, "This user's data was erased; a vault cannot be created again for the same account"),
  zkRotateForbidden: () =>
    new AppError('ZK_ROTATE_FORBIDDEN', 409, 'Rotation is not possible in zero-knowledge mode: the server holds no key to rotate'),
  zkActive: () =>
    new AppError('ZK_ACTIVE', 409, 'The recovery wrap cannot be removed in zero-knowledge mode: it is the only way to the key'),
  recoveryWrapMissing: () => new AppError('RECOVERY_WRAP_MISSING', 400, 'Set a recovery wrap before enabling zero-knowledge mode'),
  masterKeyMismatch: () =>
    new AppError(
      'MASTER_KEY_MISMATCH',
      409,
      "keyCheck (or the master key sent) does not match this vault's master key: fetch the current key (GET /key) and compute keyCheck from it",
    ),
} as const;
