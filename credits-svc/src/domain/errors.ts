import { AppError } from '@mana/shared';

/** credits-svc's own error codes (clients switch on `error`). */
export const CREDITS_ERRORS = {
  insufficientCredits: (balance: number) =>
    new AppError('INSUFFICIENT_CREDITS', 402, 'Not enough credits for this operation', { details: { balance } }),
  idempotencyKeyReused: () => new AppError('IDEMPOTENCY_KEY_REUSED', 409, 'This idempotency key was already used with a different request'),
  idempotencyKeyConflict: () =>
    new AppError('IDEMPOTENCY_KEY_CONFLICT', 400, 'The idempotency key in the body and the Idempotency-Key header differ'),
  reservationNotFound: () => new AppError('RESERVATION_NOT_FOUND', 404, 'No such reservation'),
  reservationNotHeld: () => new AppError('RESERVATION_NOT_HELD', 409, 'The reservation was already captured, released or has expired'),
  captureExceedsHold: (held: number) =>
    new AppError('CAPTURE_EXCEEDS_HOLD', 400, `The capture is larger than the hold (${held})`, { details: { held } }),
  packageNotFound: () => new AppError('PACKAGE_NOT_FOUND', 404, 'No such package'),
  paymentsNotConfigured: () => new AppError('PAYMENTS_NOT_CONFIGURED', 503, 'Payments are not configured', { expose: true }),
  paymentProviderFailed: (cause?: unknown) =>
    new AppError('PAYMENT_PROVIDER_ERROR', 502, 'The payment provider did not answer', { expose: true, cause }),
  refundBeforeCompletion: () =>
    new AppError('PURCHASE_NOT_COMPLETED', 409, 'The refunded purchase is not completed yet: the delivery is retried after its checkout'),
  invalidSignature: () => new AppError('INVALID_SIGNATURE', 400, 'The webhook signature is missing, invalid or too old'),
  notAMember: () => new AppError('NOT_A_MEMBER', 403, 'You are not a member of this organization'),
  notAnOrgAdmin: () => new AppError('ORG_ROLE_REQUIRED', 403, 'Only an owner or admin of the organization may buy credits'),
  membershipUnavailable: (cause?: unknown) =>
    new AppError('MEMBERSHIP_UNAVAILABLE', 503, 'Organization membership could not be checked', { expose: true, cause }),
  walletErased: () => new AppError('WALLET_ERASED', 410, 'The credits of this user were erased; a wallet is not opened for them again'),
  /**
   * The same code for a member erased since their token was issued who writes on an organization's wallet: for the
   * caller it means the same thing (this account's credits data is gone; sign out), one code to switch on.
   */
  actorErased: () =>
    new AppError('WALLET_ERASED', 410, "This user's credits data was erased; they can no longer act on an organization's wallet"),
  invalidCursor: () => new AppError('INVALID_CURSOR', 400, 'The cursor is not valid'),
} as const;
