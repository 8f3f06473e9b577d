import { and, desc, eq, lt, or, sql } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Conn } from '../db/types';
import { securityEventRecorded } from '../metrics';

export const SECURITY_EVENT_TYPES = [
  'sign_in_success',
  'sign_in_failure',
  'new_device_sign_in',
  'sign_out',
  'token_refreshed',
  'refresh_token_reuse',
  'refresh_token_grace_exchange',
  'session_revoked',
  'sessions_revoked',
  'password_changed',
  'password_reset',
  'email_change_requested',
  'email_changed',
  'two_factor_enabled',
  'two_factor_disabled',
  'two_factor_failed',
  'backup_code_used',
  'backup_codes_regenerated',
  'magic_link_sent',
  'magic_link_used',
  'magic_link_refused',
  'account_locked',
  'account_unlocked',
  'reauthenticated',
  'org_created',
  'org_deleted',
  'org_member_added',
  'org_member_removed',
  'org_role_changed',
  'admin_role_changed',
  'user_erased',
  'api_key_created',
  'api_key_used_new_ip',
  'api_key_deleted',
  'passkey_added',
  'passkey_removed',
] as const;

export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number];

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
  securityEventRecorded.emit(e.type, e.context);
}

/**
 * One page of a user's own events, newest first, after the keyset position `after` (createdAt with
 * microseconds as text, id). One row more than `limit` is read so the caller knows whether more follow.
 */
export async function securityEventsPage(conn: Conn, userId: string, limit: number, after?: { createdAt: string; id: string }) {
  const t = tables.securityEvents;
  // Microsecond timestamps round-trip through text so the keyset compares exactly.
  const createdAt = sql<string>`to_char(${t.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
  const rows = await conn
    .select({ id: t.id, type: t.type, ipAddress: t.ipAddress, userAgent: t.userAgent, context: t.context, createdAt })
    .from(t)
    .where(
      and(
        eq(t.userId, userId),
        after
          ? or(
              lt(t.createdAt, sql`${after.createdAt}::timestamptz`),
              and(eq(t.createdAt, sql`${after.createdAt}::timestamptz`), lt(t.id, after.id)),
            )
          : undefined,
      ),
    )
    .orderBy(desc(t.createdAt), desc(t.id))
    .limit(limit + 1);
  return { events: rows.slice(0, limit), more: rows.length > limit };
}
