import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, jsonb, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { messagingTables } from '@mana/shared';

/** Everything credits-svc stores lives in this schema; no other service reads or writes it. */
export const creditsSchema = pgSchema('credits');

export const { outbox, processedMessages } = messagingTables(creditsSchema);

/**
 * Every wallet-owned row carries `owner`: `user:<userId>` or `org:<organizationId>` (after erasure,
 * `erased:<hmac>`). Row-level security (migration 0003) admits only the owner in scope.
 */
const owner = () => text('owner').notNull();
const credits = (name: string) => bigint(name, { mode: 'number' });
const ts = (name: string) => timestamp(name, { withTimezone: true });

export const GRANT_CATEGORIES = ['daily', 'promo', 'paid'] as const;
export type GrantCategory = (typeof GRANT_CATEGORIES)[number];

/** The cached balance of one wallet; the ledger is the truth, this row agrees with it in every commit. */
export const wallets = creditsSchema.table(
  'wallets',
  {
    owner: text('owner').primaryKey(),
    available: credits('available').notNull().default(0),
    held: credits('held').notNull().default(0),
    totalEarned: credits('total_earned').notNull().default(0),
    totalSpent: credits('total_spent').notNull().default(0),
    /** When the next daily grant may be issued (user wallets only; null = now). */
    nextDailyAt: ts('next_daily_at'),
    version: integer('version').notNull().default(0),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    check('wallets_non_negative', sql`${t.available} >= 0 and ${t.held} >= 0`),
    check('wallets_totals_non_negative', sql`${t.totalEarned} >= 0 and ${t.totalSpent} >= 0`),
  ],
);

/** A lot of credit: what entered a wallet, how much of it is left, and when it expires. */
export const grants = creditsSchema.table(
  'grants',
  {
    id: uuid('id').primaryKey(),
    owner: owner(),
    category: text('category').$type<GrantCategory>().notNull(),
    amount: credits('amount').notNull(),
    remaining: credits('remaining').notNull(),
    expiresAt: ts('expires_at'),
    /** Unique per origin (`signup:<userId>`, `daily:<owner>:<ms>`, `purchase:<id>`, `grant:<owner>:<key>`). */
    sourceKey: text('source_key').notNull(),
    reason: text('reason'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('grants_source_key_uq').on(t.sourceKey),
    index('grants_burn_idx')
      .on(t.owner, t.expiresAt)
      .where(sql`${t.remaining} > 0`),
    check('grants_category', sql`${t.category} in ('daily', 'promo', 'paid')`),
    check('grants_remaining', sql`${t.amount} > 0 and ${t.remaining} >= 0 and ${t.remaining} <= ${t.amount}`),
  ],
);

/** One ledger transaction: the header of a set of postings that sum to zero. Never updated or deleted. */
export const ledgerTransactions = creditsSchema.table(
  'ledger_transactions',
  {
    id: uuid('id').primaryKey(),
    /** Keyset order (newest first in listings). */
    seq: bigint('seq', { mode: 'number' }).generatedAlwaysAsIdentity(),
    owner: owner(),
    /** spend | grant | expire | hold | capture | release | refund */
    kind: text('kind').notNull(),
    /** Signed change of the wallet's `available` balance. */
    amount: credits('amount').notNull(),
    balanceAfter: credits('balance_after').notNull(),
    appId: text('app_id'),
    description: text('description'),
    grantCategory: text('grant_category').$type<GrantCategory>(),
    /** The user who acted (differs from the owner for organization wallets). */
    actor: text('actor'),
    idempotencyKey: text('idempotency_key'),
    /** sha256 of the request a spend's idempotency key was first used with. */
    requestHash: text('request_hash'),
    reservationId: uuid('reservation_id'),
    purchaseId: uuid('purchase_id'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('ledger_transactions_idem_uq')
      .on(t.owner, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} is not null`),
    index('ledger_transactions_owner_seq_idx').on(t.owner, t.seq),
  ],
);

/**
 * The postings of a transaction. `account` is `available` or `held` (the owner's wallet) or
 * `system:issuance|revenue|breakage|payments`. A statement trigger refuses postings that do not sum to zero.
 */
export const ledgerPostings = creditsSchema.table(
  'ledger_postings',
  {
    id: bigint('id', { mode: 'number' }).generatedAlwaysAsIdentity().primaryKey(),
    transactionId: uuid('transaction_id').notNull(),
    owner: owner(),
    account: text('account').notNull(),
    grantId: uuid('grant_id'),
    amount: credits('amount').notNull(),
  },
  (t) => [
    index('ledger_postings_tx_idx').on(t.transactionId),
    index('ledger_postings_owner_idx').on(t.owner, t.account),
    check(
      'ledger_postings_account',
      sql`${t.account} in ('available', 'held', 'system:issuance', 'system:revenue', 'system:breakage', 'system:payments')`,
    ),
    check('ledger_postings_nonzero', sql`${t.amount} <> 0`),
  ],
);

export type ReservationStatus = 'held' | 'captured' | 'released' | 'expired';

/** A hold on credit for long-running work; resolves exactly once. */
export const reservations = creditsSchema.table(
  'reservations',
  {
    id: uuid('id').primaryKey(),
    owner: owner(),
    amount: credits('amount').notNull(),
    captured: credits('captured'),
    status: text('status').$type<ReservationStatus>().notNull(),
    appId: text('app_id').notNull(),
    description: text('description'),
    idempotencyKey: text('idempotency_key').notNull(),
    requestHash: text('request_hash').notNull(),
    expiresAt: ts('expires_at').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    resolvedAt: ts('resolved_at'),
  },
  (t) => [
    uniqueIndex('reservations_idem_uq').on(t.owner, t.idempotencyKey),
    index('reservations_expiry_idx')
      .on(t.expiresAt)
      .where(sql`${t.status} = 'held'`),
    check('reservations_status', sql`${t.status} in ('held', 'captured', 'released', 'expired')`),
    check('reservations_amount', sql`${t.amount} > 0 and (${t.captured} is null or (${t.captured} >= 0 and ${t.captured} <= ${t.amount}))`),
  ],
);

/** Which lots a hold burned (given back on release, in reverse burn order). */
export const reservationAllocations = creditsSchema.table(
  'reservation_allocations',
  {
    reservationId: uuid('reservation_id').notNull(),
    grantId: uuid('grant_id').notNull(),
    owner: owner(),
    /** Burn order within the hold. */
    position: integer('position').notNull(),
    amount: credits('amount').notNull(),
  },
  (t) => [primaryKey({ columns: [t.reservationId, t.grantId] }), check('reservation_allocations_amount', sql`${t.amount} > 0`)],
);

export type PurchaseStatus = 'pending' | 'completed' | 'refunded';

/** A checkout of a package; kept for bookkeeping (pseudonymized on erasure). */
export const purchases = creditsSchema.table(
  'purchases',
  {
    id: uuid('id').primaryKey(),
    owner: owner(),
    /** The user who bought (an organization's owner/admin, or the user). */
    actor: text('actor').notNull(),
    packageId: text('package_id').notNull(),
    credits: credits('credits').notNull(),
    amountCents: integer('amount_cents').notNull(),
    currency: text('currency').notNull(),
    status: text('status').$type<PurchaseStatus>().notNull(),
    stripeSessionId: text('stripe_session_id'),
    stripePaymentIntent: text('stripe_payment_intent'),
    grantId: uuid('grant_id'),
    refundedCredits: credits('refunded_credits').notNull().default(0),
    /** Credits a refund could not take back (already spent). */
    refundShortfall: credits('refund_shortfall').notNull().default(0),
    createdAt: ts('created_at').notNull().defaultNow(),
    completedAt: ts('completed_at'),
    refundedAt: ts('refunded_at'),
  },
  (t) => [
    index('purchases_owner_idx').on(t.owner, t.createdAt),
    uniqueIndex('purchases_session_uq').on(t.stripeSessionId),
    index('purchases_payment_intent_idx').on(t.stripePaymentIntent),
    check('purchases_status', sql`${t.status} in ('pending', 'completed', 'refunded')`),
  ],
);

/** Stripe event ids already handled (no personal data: ids and types only). */
export const webhookEvents = creditsSchema.table('webhook_events', {
  id: text('id').primaryKey(),
  type: text('type').notNull(),
  processedAt: ts('processed_at').notNull().defaultNow(),
});

/**
 * Tombstones of erased users, by the keyed pseudonym the erasure puts in the ledger (`erased:<hmac>`, never the id):
 * written in the erasure's transaction; a wallet is never created again for a user found here (`openWallet`).
 */
export const erasedUsers = creditsSchema.table(
  'erased_users',
  {
    pseudonym: text('pseudonym').primaryKey(),
    erasedAt: ts('erased_at').notNull().defaultNow(),
  },
  (t) => [check('erased_users_pseudonym', sql`${t.pseudonym} like 'erased:%'`)],
);
