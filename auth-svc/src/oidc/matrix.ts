import { eq, like } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Db } from '../db/types';
import { MATRIX_LOCALPART_CHARS } from './config';

/** The localpart a Matrix id gets from an email: its local part, lower-cased, reduced to Matrix's characters. */
export function matrixLocalpartFromEmail(email: string): string {
  const local = email.slice(0, Math.max(0, email.lastIndexOf('@'))) || email;
  const reduced = local.toLowerCase().replace(MATRIX_LOCALPART_CHARS, '');
  return reduced || 'user';
}

export const matrixUserId = (template: string, localpart: string) => template.replace('{localpart}', localpart);

/** `@alice:matrix.example.org` → `alice` (what Synapse's localpart_template must produce). */
export const localpartOf = (mxid: string) => mxid.slice(1, mxid.indexOf(':'));

/**
 * The user's Matrix id, recorded on their first sign-in through the Synapse client. Two emails with
 * the same local part would map to one Matrix id, so a later user gets the first free numbered
 * variant (`alice2`, `alice3`, …); the unique index settles races between instances.
 */
export async function ensureMatrixLink(db: Db, template: string, user: { id: string; email: string }): Promise<string> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const [existing] = await db.select().from(tables.matrixLinks).where(eq(tables.matrixLinks.userId, user.id)).limit(1);
    if (existing) return existing.matrixUserId;
    const base = matrixLocalpartFromEmail(user.email);
    const taken = new Set(
      (
        await db
          .select({ id: tables.matrixLinks.matrixUserId })
          .from(tables.matrixLinks)
          .where(like(tables.matrixLinks.matrixUserId, `${matrixUserId(template, escapeLike(base)).replace(/:.*$/, '')}%`))
      ).map((r) => r.id),
    );
    let candidate = matrixUserId(template, base);
    for (let n = 2; taken.has(candidate); n++) candidate = matrixUserId(template, `${base}${n}`);
    const inserted = await db
      .insert(tables.matrixLinks)
      .values({ userId: user.id, matrixUserId: candidate })
      .onConflictDoNothing()
      .returning({ id: tables.matrixLinks.matrixUserId });
    if (inserted[0]) return inserted[0].id;
  }
  throw new Error('could not allocate a Matrix user id');
}

export async function findMatrixLink(db: Db, userId: string) {
  const [row] = await db.select().from(tables.matrixLinks).where(eq(tables.matrixLinks.userId, userId)).limit(1);
  return row;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The Matrix link as the GDPR view shows it (null when the user never signed in to Matrix). */
export const matrixView = (row: Awaited<ReturnType<typeof findMatrixLink>>) =>
  row ? { userId: row.matrixUserId, createdAt: row.createdAt.toISOString() } : null;
