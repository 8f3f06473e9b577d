import { encryptionVaultAudit, type AuditAction } from './schema';
import type { Tx } from './scope';

export interface AuditEntry {
  userId: string;
  action: AuditAction;
  status: number;
  ip?: string | null;
  userAgent?: string | null;
  context?: Record<string, unknown>;
}

/** Appends one audit row inside the caller's user-scoped transaction (RLS admits only the user in scope). */
export async function appendAudit(tx: Tx, entry: AuditEntry): Promise<void> {
  await tx.insert(encryptionVaultAudit).values({
    userId: entry.userId,
    action: entry.action,
    status: entry.status,
    ip: entry.ip ?? null,
    userAgent: entry.userAgent ?? null,
    context: entry.context ?? {},
  });
}
