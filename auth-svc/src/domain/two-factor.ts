import { eq } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Db } from '../db/types';
import { recordSecurityEvent, type RequestMeta } from './security-events';

/** Turns two-factor off after the caller proved a current code (Better Auth's own disable wants the password). */
export async function turnOffTwoFactor(db: Db, userId: string, meta: RequestMeta): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.delete(tables.twoFactor).where(eq(tables.twoFactor.userId, userId));
    await tx.update(tables.user).set({ twoFactorEnabled: false }).where(eq(tables.user.id, userId));
    await recordSecurityEvent(tx, { userId, type: 'two_factor_disabled', meta, context: { with: 'code' } });
  });
}
