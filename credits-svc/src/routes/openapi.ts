import { openApiFragment, type ApiOperation } from '@mana/shared';
import {
  captureBody,
  internalGrantBody,
  internalUseBody,
  organizationQuery,
  purchaseBody,
  releaseBody,
  reservationBody,
  reservationParams,
  transactionsQuery,
  usageQuery,
  useBody,
  userIdParams,
} from './schemas';

const C = '/api/v1/credits';
const idempotencyHeader = {
  'Idempotency-Key': {
    description:
      'instead of `idempotencyKey` in the body (both given: they must agree); a replay answers 200 with `Idempotency-Replayed: true`',
  },
};
const org = { 403: ['NOT_A_MEMBER'], 503: ['MEMBERSHIP_UNAVAILABLE'] };
/** The caller's (or charged user's) credits were erased: no wallet is opened for them again, nor do they act on an organization's. */
const erased = { 410: ['WALLET_ERASED'] };
const spendErrors = {
  ...org,
  ...erased,
  400: ['IDEMPOTENCY_KEY_CONFLICT'],
  402: ['INSUFFICIENT_CREDITS'],
  409: ['IDEMPOTENCY_KEY_REUSED'],
};

/** Every route of credits-svc, with the schemas the routes parse (`./schemas`). */
export const creditsApi: readonly ApiOperation[] = [
  {
    method: 'get',
    path: `${C}/balance`,
    access: 'bearer',
    summary: 'Balance of the caller’s wallet (or an organization’s)',
    query: organizationQuery,
    responses: { 200: '`{ balance, … }` by credit kind' },
    errors: org,
  },
  {
    method: 'post',
    path: `${C}/use`,
    access: 'bearer',
    summary: 'Spend credits (idempotent with a key)',
    body: useBody,
    headers: idempotencyHeader,
    responses: { 201: 'the ledger entry and the new balance', 200: 'a replay of the first answer' },
    errors: spendErrors,
  },
  {
    method: 'get',
    path: `${C}/transactions`,
    access: 'bearer',
    summary: 'Ledger entries, newest first (`Link: rel="next"` for keyset pages)',
    query: transactionsQuery,
    responses: { 200: 'array of transactions' },
    errors: { ...org, 400: ['INVALID_CURSOR'] },
  },
  {
    method: 'get',
    path: `${C}/usage`,
    access: 'bearer',
    summary: 'Spending per app over a period',
    query: usageQuery,
    responses: { 200: 'usage per app' },
    errors: org,
  },
  {
    method: 'get',
    path: `${C}/packages`,
    access: 'bearer',
    summary: 'Credit packages on sale',
    responses: { 200: 'array of `{ id, name, credits, priceCents, currency }`' },
  },
  {
    method: 'get',
    path: `${C}/purchases`,
    access: 'bearer',
    summary: 'Purchases of the wallet',
    query: organizationQuery,
    responses: { 200: 'array of purchases' },
    errors: org,
  },
  {
    method: 'post',
    path: `${C}/purchases`,
    access: 'bearer',
    summary: 'Start a Stripe Checkout for a package',
    body: purchaseBody,
    responses: { 201: '`{ purchaseId, checkoutUrl, … }`' },
    errors: {
      ...org,
      403: ['NOT_A_MEMBER', 'ORG_ROLE_REQUIRED'],
      404: ['PACKAGE_NOT_FOUND'],
      ...erased,
      502: ['PAYMENT_PROVIDER_ERROR'],
      503: ['PAYMENTS_NOT_CONFIGURED', 'MEMBERSHIP_UNAVAILABLE'],
    },
  },
  {
    method: 'post',
    path: `${C}/reservations`,
    access: 'bearer',
    summary: 'Hold credits for a while (capture or release later); an idempotency key is required',
    body: reservationBody,
    headers: idempotencyHeader,
    responses: { 201: 'the reservation', 200: 'a replay of the first answer' },
    errors: spendErrors,
  },
  {
    method: 'get',
    path: `${C}/reservations/:id`,
    access: 'bearer',
    summary: 'One reservation',
    params: reservationParams,
    query: organizationQuery,
    responses: { 200: 'the reservation' },
    errors: { ...org, 404: ['RESERVATION_NOT_FOUND'] },
  },
  {
    method: 'post',
    path: `${C}/reservations/:id/capture`,
    access: 'bearer',
    summary: 'Spend part or all of a hold; the rest goes back',
    params: reservationParams,
    body: captureBody,
    responses: { 200: 'the captured reservation' },
    errors: { ...org, ...erased, 400: ['CAPTURE_EXCEEDS_HOLD'], 404: ['RESERVATION_NOT_FOUND'], 409: ['RESERVATION_NOT_HELD'] },
  },
  {
    method: 'post',
    path: `${C}/reservations/:id/release`,
    access: 'bearer',
    summary: 'Give a hold back',
    params: reservationParams,
    body: releaseBody,
    responses: { 200: 'the released reservation' },
    errors: { ...org, ...erased, 404: ['RESERVATION_NOT_FOUND'], 409: ['RESERVATION_NOT_HELD'] },
  },
  {
    method: 'post',
    path: `${C}/webhook`,
    access: 'public',
    summary: 'Stripe webhook: grants a paid purchase (the signature over the raw body is the credential)',
    bodyType: 'application/json',
    headers: { 'Stripe-Signature': { description: 'Stripe’s signature of the raw body', required: true } },
    responses: {
      200: '`{ received: true, outcome }`; `outcome` `erased`: the purchase’s user was erased, nothing granted or taken back (settle it in Stripe)',
    },
    errors: { 400: ['INVALID_SIGNATURE'], 409: ['PURCHASE_NOT_COMPLETED'] },
  },
  {
    method: 'post',
    path: '/api/v1/internal/credits/use',
    access: 'service',
    summary: 'A backend charges one of its users (idempotency key required)',
    body: internalUseBody,
    responses: { 201: 'the ledger entry and the new balance', 200: 'a replay of the first answer' },
    errors: { 402: ['INSUFFICIENT_CREDITS'], 409: ['IDEMPOTENCY_KEY_REUSED'], ...erased },
  },
  {
    method: 'post',
    path: '/api/v1/internal/credits/grants',
    access: 'service',
    summary: 'Grant promo credits to a user or an organization (idempotent)',
    body: internalGrantBody,
    responses: { 201: 'the grant', 200: 'a replay of the first answer' },
    errors: { 409: ['IDEMPOTENCY_KEY_REUSED'], ...erased },
  },
  {
    method: 'get',
    path: '/api/v1/internal/credits/users/:id/data',
    access: 'service',
    summary: 'credits-svc’s section of a user’s data summary (gdpr-svc)',
    params: userIdParams,
    responses: { 200: 'balance, ledger and purchases of the user' },
  },
];

export const creditsOpenApi = () =>
  openApiFragment({
    service: 'credits-svc',
    description: 'Balances, a double-entry ledger, holds, packages and purchases.',
    operations: creditsApi,
  });
