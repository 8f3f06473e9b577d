import { z } from 'zod';
import { AUDIT_ACTIONS } from '../db/audit';
import { SORTS } from '../db/directory';

const flag = z.enum(['true', 'false']).transform((v) => v === 'true');
const dateTime = z.iso.datetime({ offset: true }).transform((v) => new Date(v));
// PostgreSQL refuses 0x00 in text (a 500); no id, search, cursor or tier has a reason to carry control characters.
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f]/;
// Free text (reasons) may span lines and carry tabs; every other control character is refused.
// eslint-disable-next-line no-control-regex
const TEXT_CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const plain = (max: number) =>
  z
    .string()
    .max(max)
    .refine((v) => !CONTROLS.test(v), 'must not contain control characters');
const text = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .refine((v) => !TEXT_CONTROLS.test(v), 'must not contain control characters');
const id = plain(128).min(1);

export const userIdParams = z.object({ id });

export const listUsersQuery = z
  .object({
    page: z.coerce.number().int().min(1).max(100_000).default(1),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    search: z
      .string()
      .trim()
      .max(256)
      .refine((v) => !CONTROLS.test(v), 'must not contain control characters')
      .optional()
      .transform((s) => s || undefined),
    role: z.enum(['user', 'admin']).optional(),
    tier: plain(64).min(1).optional(),
    banned: flag.optional(),
    emailVerified: flag.optional(),
    createdFrom: dateTime.optional(),
    createdTo: dateTime.optional(),
    sort: z.enum(SORTS).default('-createdAt'),
    /** Keyset paging: empty for the first page, then the `nextCursor` of the previous one. */
    cursor: plain(1024).optional(),
  })
  .refine((q) => q.cursor === undefined || q.page === 1, { path: ['page'], message: 'page and cursor exclude each other' });

export const tierBody = z.object({ tier: plain(64).min(1), reason: text(500).optional() });

export const banBody = z.object({
  reason: text(500).min(1),
  expiresAt: dateTime.refine((d) => d.getTime() > Date.now(), 'must be in the future').optional(),
});

export const roleBody = z.object({ role: z.enum(['user', 'admin']) });

export const eraseBody = z.object({ reason: text(500).min(1) });

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
