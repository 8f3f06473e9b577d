import { sql } from 'drizzle-orm';
import type { AuditAction } from './schema';
import type { Tx } from './scope';

export interface AuditEntry {
  userId: string;
  action: AuditAction;
  status: number;
  ip?: string | null;
  userAgent?: string | null;
  context?: Record<string, unknown>;
}

/**
 * Appends one audit row inside the caller's user-scoped transaction (RLS admits only the user in scope), only
 * while the user's vault exists: the row is taken FOR KEY SHARE, so the erasure's delete waits for this row's
 * commit (and pseudonymizes it after), or this insert waits for the erasure's commit and writes nothing. An erased
 * user (or one who never had a vault) gets no audit row: there is no key to protect, and a row would name them
 * after their erasure. Answers whether the row was written.
 */
export async function appendAudit(tx: Tx, entry: AuditEntry): Promise<boolean> {
  const result = await tx.execute(sql`
    with vault as (select user_id from vault.encryption_vaults where user_id = ${entry.userId} for key share)
    insert into vault.encryption_vault_audit (user_id, action, status, ip, user_agent, context)
    select user_id, ${entry.action}::text, ${entry.status}::integer, ${entry.ip ?? null}::text, ${entry.userAgent ?? null}::text,
      ${JSON.stringify(entry.context ?? {})}::jsonb
    from vault`);
  return (result.rowCount ?? 0) > 0;
}
