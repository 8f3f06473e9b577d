import { ADMIN_ERRORS } from './errors';
import type { AdminDeps } from './context';
import { findUser, listKeyset, listPage, type DirectoryFilter, type DirectoryRow, type KeysetPosition, type Sort } from '../db/directory';

/** The list shape of the seed's admin API. */
export function listedUser(r: DirectoryRow) {
  return {
    id: r.id,
    email: r.email,
    name: r.name,
    role: r.role,
    tier: r.tier,
    emailVerified: r.emailVerified,
    banned: r.banned,
    createdAt: r.createdAt.toISOString(),
  };
}

export function banView(r: DirectoryRow) {
  return r.banned ? { banned: true, bannedReason: r.banReason, banExpiresAt: r.banExpiresAt?.toISOString() ?? null } : { banned: false };
}

export interface ListQuery extends DirectoryFilter {
  sort: Sort;
  limit: number;
  page: number;
  /** Present (even empty) = keyset mode. */
  cursor?: string;
}

const encodeCursor = (p: KeysetPosition) => Buffer.from(JSON.stringify([p.value, p.id]), 'utf8').toString('base64url');

function decodeCursor(cursor: string): KeysetPosition {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'string' && typeof parsed[1] === 'string')
      return { value: parsed[0], id: parsed[1] };
  } catch {
    // falls through to the 400
  }
  throw ADMIN_ERRORS.invalidCursor();
}

// Reads go straight to the pool (one round trip; no transaction, no role switch): only writes need the
// append-only service role.
export async function listUsers(deps: AdminDeps, q: ListQuery) {
  if (q.cursor !== undefined) {
    const after = q.cursor === '' ? undefined : decodeCursor(q.cursor);
    if (after && q.sort.endsWith('createdAt') && Number.isNaN(Date.parse(after.value))) throw ADMIN_ERRORS.invalidCursor();
    const { users, next } = await listKeyset(deps.db, q, q.sort, after, q.limit);
    return { users: users.map(listedUser), nextCursor: next ? encodeCursor(next) : null };
  }
  const { users, total } = await listPage(deps.db, q, q.sort, q.page, q.limit);
  return { users: users.map(listedUser), total, page: q.page, limit: q.limit };
}

export async function directoryUser(deps: AdminDeps, userId: string): Promise<DirectoryRow> {
  const row = await findUser(deps.db, userId);
  if (!row) throw ADMIN_ERRORS.userNotFound();
  return row;
}

/** The directory row plus live sessions and the last sign-in, from auth-svc. */
export async function userDetail(deps: AdminDeps, userId: string) {
  const row = await directoryUser(deps, userId);
  const activity = await deps.auth<{ sessions: number; lastSignInAt: string | null }>(
    'GET',
    `/api/v1/internal/users/${encodeURIComponent(userId)}/activity`,
  );
  return { ...listedUser(row), ...banView(row), sessions: activity.sessions, lastSignInAt: activity.lastSignInAt };
}

/** What the user sees at /api/v1/me/data, from gdpr-svc. */
export async function userData(deps: AdminDeps, userId: string): Promise<unknown> {
  return deps.gdpr('GET', `/api/v1/internal/gdpr/users/${encodeURIComponent(userId)}/data`);
}

/** For other services: the user's tier (the first tier until an admin sets another). */
export async function tierOf(deps: AdminDeps, userId: string) {
  const row = await directoryUser(deps, userId);
  return { userId, tier: row.tier };
}

/** admin-svc's section of the user's GDPR summary. */
export async function adminSection(deps: AdminDeps, userId: string) {
  const row = await directoryUser(deps, userId);
  return { userId, tier: row.tier, ...banView(row) };
}
