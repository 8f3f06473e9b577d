import { and, desc, eq, lt, type SQL } from 'drizzle-orm';
import { auditLog } from './schema';
import type { Conn } from './scope';

export const AUDIT_ACTIONS = [
  'tier.set',
  'ban.set',
  'ban.lift',
  'sessions.revoke',
  'role.set',
  'lockout.unlock',
  'data.erase',
  'directory.resync',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditInput {
  actorId: string;
  action: AuditAction;
  targetId: string | null;
  reason?: string | null;
  changes?: Record<string, unknown>;
  requestId?: string | null;
  ipAddress?: string | null;
}

/** Appends one entry in the caller's transaction (as admin_app: INSERT is all it may do). */
export async function appendAudit(tx: Conn, entry: AuditInput): Promise<void> {
  await tx.insert(auditLog).values({
    actorId: entry.actorId,
    action: entry.action,
    targetId: entry.targetId,
    reason: entry.reason ?? null,
    changes: entry.changes ?? {},
    requestId: entry.requestId ?? null,
    ipAddress: entry.ipAddress ?? null,
  });
}

export interface AuditFilter {
  targetId?: string;
  actorId?: string;
  action?: AuditAction;
  /** The id of the last entry of the previous page (newest first). */
  before?: number;
  limit: number;
}

export async function listAudit(tx: Conn, f: AuditFilter) {
  const where: (SQL | undefined)[] = [
    f.targetId ? eq(auditLog.targetId, f.targetId) : undefined,
    f.actorId ? eq(auditLog.actorId, f.actorId) : undefined,
    f.action ? eq(auditLog.action, f.action) : undefined,
    f.before ? lt(auditLog.id, f.before) : undefined,
  ];
  const rows = await tx
    .select()
    .from(auditLog)
    .where(and(...where))
    .orderBy(desc(auditLog.id))
    .limit(f.limit + 1);
  const page = rows.slice(0, f.limit);
  return {
    entries: page.map((r) => ({ ...r, id: String(r.id), createdAt: r.createdAt.toISOString() })),
    nextCursor: rows.length > f.limit ? String(page.at(-1)?.id) : null,
  };
}
