import { z } from 'zod';
import { AUDIT_ACTIONS } from '../db/audit';
import { SORTS } from '../db/directory';

const flag = z.enum(['true', 'false']).transform((v) => v === 'true');
const dateTime = z.iso.datetime({ offset: true }).transform((v) => new Date(v));
const id = z.string().min(1).max(128);

export const userIdParams = z.object({ id });

export const listUsersQuery = z
  .object({
    page: z.coerce.number().int().min(1).max(100_000).default(1),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    search: z
      .string()
      .trim()
      .max(256)
      .optional()
      .transform((s) => s || undefined),
    role: z.enum(['user', 'admin']).optional(),
    tier: z.string().min(1).max(64).optional(),
    banned: flag.optional(),
    emailVerified: flag.optional(),
    createdFrom: dateTime.optional(),
    createdTo: dateTime.optional(),
    sort: z.enum(SORTS).default('-createdAt'),
    /** Keyset paging: empty for the first page, then the `nextCursor` of the previous one. */
    cursor: z.string().max(1024).optional(),
  })
  .refine((q) => q.cursor === undefined || q.page === 1, { path: ['page'], message: 'page and cursor exclude each other' });

export const tierBody = z.object({ tier: z.string().min(1).max(64), reason: z.string().trim().max(500).optional() });

export const banBody = z.object({
  reason: z.string().trim().min(1).max(500),
  expiresAt: dateTime.refine((d) => d.getTime() > Date.now(), 'must be in the future').optional(),
});

export const roleBody = z.object({ role: z.enum(['user', 'admin']) });

export const eraseBody = z.object({ reason: z.string().trim().min(1).max(500) });

export const auditQuery = z.object({
  targetId: id.optional(),
  actorId: id.optional(),
  action: z.enum(AUDIT_ACTIONS).optional(),
  cursor: z
    .string()
    .regex(/^\d{1,18}$/, 'a cursor this API handed out')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});
