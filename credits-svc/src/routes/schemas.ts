import { z } from 'zod';

/** Credits are whole numbers; one operation moves at most a billion. */
export const creditAmount = z.number().int().positive().max(1_000_000_000);
export const idempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');
// eslint-disable-next-line no-control-regex
const NO_CONTROL_CHARS = /^[^\u0000-\u001f\u007f]+$/;
const id = z
  .string()
  .min(1)
  .max(128)
  .regex(NO_CONTROL_CHARS)
  .refine((s) => !s.startsWith('erased:'), 'reserved');
/**
 * A point in time PostgreSQL's timestamptz holds: `z.coerce.date()` alone takes years up to ±275760, and a query
 * with one failed in the database (a 500, found by test/e2e/fuzz.test.ts).
 */
const instant = z.coerce
  .date()
  .min(new Date('1970-01-01T00:00:00Z'), 'not before 1970')
  .max(new Date('9999-12-31T23:59:59.999Z'), 'before the year 10000');

/** No control characters at all (app ids, package ids); emptiness is left to `.min(1)`. */
// eslint-disable-next-line no-control-regex
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
/**
 * Free text (descriptions, reasons): line breaks and tabs are fine, other control characters are not —
 * PostgreSQL refuses NUL in text, and the rest has no business in a ledger.
 */
// eslint-disable-next-line no-control-regex
const TEXT_CHARS = /^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$/;
const freeText = (max: number) => z.string().min(1).max(max).regex(TEXT_CHARS, 'no control characters');
export const appId = z.string().min(1).max(100).regex(NO_CONTROL, 'no control characters');

/** Whether a JSON value holds a NUL character in a string or a key (jsonb cannot store `\u0000`). */
const holdsNul = (v: unknown): boolean => {
  if (typeof v === 'string') return v.includes('\u0000');
  if (Array.isArray(v)) return v.some(holdsNul);
  if (v !== null && typeof v === 'object') return Object.entries(v).some(([k, x]) => k.includes('\u0000') || holdsNul(x));
  return false;
};
const metadata = z
  .record(z.string().max(100), z.unknown())
  .refine((m) => JSON.stringify(m).length <= 4096, 'at most 4 KB of JSON')
  .refine((m) => !holdsNul(m), 'no NUL characters (\\u0000)')
  .optional();

export const organizationQuery = z.object({ organizationId: id.optional() });

export const useBody = z.strictObject({
  amount: creditAmount,
  appId,
  description: freeText(500),
  idempotencyKey: idempotencyKey.optional(),
  metadata,
  organizationId: id.optional(),
});

export const transactionsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(100_000).default(0),
  cursor: z.string().min(1).max(64).optional(),
  organizationId: id.optional(),
});

export const usageQuery = z
  .object({ from: instant.optional(), to: instant.optional(), organizationId: id.optional() })
  .refine((q) => !q.from || !q.to || q.from < q.to, { message: 'from must be before to', path: ['from'] });

export const purchaseBody = z.strictObject({
  packageId: z.string().min(1).max(64).regex(NO_CONTROL, 'no control characters'),
  organizationId: id.optional(),
});

export const reservationBody = z.strictObject({
  amount: creditAmount,
  appId,
  description: freeText(500).optional(),
  ttlSeconds: z.number().int().min(1).max(86_400).default(900),
  idempotencyKey: idempotencyKey.optional(),
  organizationId: id.optional(),
});

export const reservationParams = z.object({ id: z.uuid() });
export const captureBody = z.strictObject({ amount: z.number().int().min(0).max(1_000_000_000), organizationId: id.optional() });
export const releaseBody = z.strictObject({ organizationId: id.optional() }).default({});

export const internalUseBody = z.strictObject({
  userId: id,
  amount: creditAmount,
  appId,
  description: freeText(500),
  idempotencyKey,
  metadata,
});

export const internalGrantBody = z
  .strictObject({
    userId: id.optional(),
    organizationId: id.optional(),
    amount: creditAmount,
    category: z.literal('promo').default('promo'),
    reason: freeText(500),
    idempotencyKey,
    expiresAt: instant.optional(),
  })
  .refine((b) => (b.userId === undefined) !== (b.organizationId === undefined), {
    message: 'exactly one of userId and organizationId',
    path: ['userId'],
  });

export const userIdParams = z.object({ id });
