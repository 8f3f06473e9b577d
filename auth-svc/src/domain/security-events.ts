import * as tables from '../db/schema';
import type { Conn } from '../db/types';

/** Event types recorded so far; issue 4 widens the list (sign-in, 2FA, lockout…). */
export type SecurityEventType = 'refresh_token_reuse' | 'session_revoked' | 'sessions_revoked' | 'user_erased';

export interface RequestMeta {
  ipAddress?: string | null;
  userAgent?: string | null;
}

/** Appends to the audit log. `context` must never hold a password, token or code. */
export async function recordSecurityEvent(
  conn: Conn,
  e: { userId: string | null; type: SecurityEventType; meta?: RequestMeta; context?: Record<string, unknown> },
): Promise<void> {
  await conn.insert(tables.securityEvents).values({
    userId: e.userId,
    type: e.type,
    ipAddress: e.meta?.ipAddress ?? null,
    userAgent: e.meta?.userAgent?.slice(0, 512) ?? null,
    context: e.context ?? {},
  });
}
