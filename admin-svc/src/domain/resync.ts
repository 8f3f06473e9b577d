import { sql } from 'drizzle-orm';
import type { UpstreamCall } from '../clients/upstream';
import { appendAudit } from '../db/audit';
import { lockDirectory } from '../db/directory';
import { asApp, type AdminDb } from '../db/scope';
import { pseudonymOf } from './pseudonym';

interface AuthUser {
  id: string;
  email: string;
  name: string;
  role: string;
  emailVerified: boolean;
  createdAt: string;
  banned: boolean;
  banReason: string | null;
  banExpiresAt: string | null;
}

export interface ResyncReport {
  added: number;
  changed: number;
  removed: number;
  total: number;
}

const count = (r: { rowCount?: number | null }) => r.rowCount ?? 0;

/**
 * Rebuilds the directory from auth-svc's paged `GET /api/v1/internal/users`: rows missing here are added
 * (with the first tier), rows that differ are corrected, rows of users auth-svc no longer has are removed.
 * Tiers are admin-svc's own and stay. One transaction: readers see the old directory or the new one.
 * Erased users are skipped: auth-svc may still list one whose erasure reached admin-svc first (the saga's
 * participants run independently), and no erasure commits between that check and the writes (the directory's
 * lock, taken once the pages are read: see db/directory.ts).
 */
export async function resyncDirectory(
  db: AdminDb,
  auth: UpstreamCall,
  opts: { defaultTier: string; actorId: string; pseudonymSecret: string; pageSize?: number },
): Promise<ResyncReport> {
  return asApp(db, async (tx) => {
    await tx.execute(sql`create temp table resync_users (
      id text primary key, email text not null, name text not null, role text not null, email_verified boolean not null,
      created_at timestamptz not null, banned boolean not null, ban_reason text, ban_expires_at timestamptz,
      pseudonym text not null) on commit drop`);
    let cursor = '';
    let total = 0;
    for (;;) {
      const page = await auth<{ users: AuthUser[]; nextCursor: string | null }>(
        'GET',
        `/api/v1/internal/users?limit=${opts.pageSize ?? 1000}&cursor=${encodeURIComponent(cursor)}`,
      );
      total += page.users.length;
      // The tombstone's key (erased users are remembered by keyed pseudonym, never by id).
      const users = page.users.map((u) => ({ ...u, pseudonym: pseudonymOf(opts.pseudonymSecret, u.id) }));
      if (users.length > 0)
        await tx.execute(sql`insert into resync_users
          select id, email, name, role, "emailVerified", "createdAt", banned, "banReason", "banExpiresAt", pseudonym
          from jsonb_to_recordset(${JSON.stringify(users)}::jsonb) as x(id text, email text, name text, role text,
            "emailVerified" boolean, "createdAt" timestamptz, banned boolean, "banReason" text, "banExpiresAt" timestamptz,
            pseudonym text)`);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    await lockDirectory(tx);
    await tx.execute(sql`delete from resync_users r using admin.erased_users e where e.pseudonym = r.pseudonym`);
    const removed = await tx.execute(
      sql`delete from admin.directory_users d where not exists (select 1 from resync_users r where r.id = d.id)`,
    );
    const changed = await tx.execute(sql`update admin.directory_users d set
        email = r.email, email_at = now(), name = r.name, name_at = now(), role = r.role, role_at = now(),
        email_verified = r.email_verified, email_verified_at = now(), created_at = r.created_at,
        banned = r.banned, ban_reason = r.ban_reason, ban_expires_at = r.ban_expires_at, updated_at = now()
      from resync_users r
      where d.id = r.id and (d.email, d.name, d.role, d.email_verified, d.created_at, d.banned and (d.ban_expires_at is null or d.ban_expires_at > now()))
        is distinct from (r.email, r.name, r.role, r.email_verified, r.created_at, r.banned)`);
    const added = await tx.execute(sql`insert into admin.directory_users
        (id, email, email_at, name, name_at, role, role_at, email_verified, email_verified_at, tier, banned, ban_reason, ban_expires_at, created_at)
      select r.id, r.email, now(), r.name, now(), r.role, now(), r.email_verified, now(), ${opts.defaultTier}, r.banned, r.ban_reason, r.ban_expires_at, r.created_at
      from resync_users r where not exists (select 1 from admin.directory_users d where d.id = r.id)`);
    const report = { added: count(added), changed: count(changed), removed: count(removed), total };
    await appendAudit(tx, { actorId: opts.actorId, action: 'directory.resync', targetId: null, changes: { ...report } });
    return report;
  });
}
