import { AppError } from '@mana/shared';

/** gdpr-svc's own error codes (clients switch on `error`). */
export const GDPR_ERRORS = {
  confirmationRequired: () =>
    new AppError('CONFIRMATION_REQUIRED', 400, 'Erasure deletes everything everywhere: send { "confirm": "DELETE" } to go ahead'),
  exportRateLimited: (retryAfterSeconds: number) =>
    new AppError('EXPORT_RATE_LIMITED', 429, `Too many exports in the last hour; try again in ${retryAfterSeconds} s`, {
      headers: { 'Retry-After': String(retryAfterSeconds) },
      details: { retryAfterSeconds },
    }),
  erasureNotFound: () => new AppError('ERASURE_NOT_FOUND', 404, 'No erasure request with this id and token'),
} as const;
