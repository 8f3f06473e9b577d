import { and, asc, count, desc, eq, gte, lte, not, sql, type SQL } from 'drizzle-orm';
import { directoryUsers as d, erasedUsers } from './schema';
import type { Conn } from './scope';

/** What one event (or the resync) says about a user; absent fields are left as they are. */
export interface UserFacts {
  userId: string;
  /** The event's occurredAt: a field changes only when this is newer than the time it was last set. */
  at: Date;
  email?: string;
  name?: string | null;
  role?: string;
  emailVerified?: boolean;
}

/**
 * Idempotent, order-independent projection of one event: each field is taken only when the event is newer
 * than the one that last set it, so duplicates change nothing and a late older update never wins. An update
 * arriving before its registration creates the row; the registration fills in the rest.
 */
export async function applyUserFacts(tx: Conn, f: UserFacts, defaultTier: string): Promise<void> {
  const at = f.at.toISOString();
  const field = <T>(value: T | undefined, cast: string) =>
    value === undefined ? sql`null::${sql.raw(cast)}` : sql`${value}::${sql.raw(cast)}`;
  const fieldAt = (value: unknown) => (value === undefined ? sql`'-infinity'::timestamptz` : sql`${at}::timestamptz`);
  const name = f.name === undefined ? undefined : (f.name ?? '');
  await tx.execute(sql`
    insert into admin.directory_users as d
      (id, email, email_at, name, name_at, role, role_at, email_verified, email_verified_at, tier, created_at, updated_at)
    values (
      ${f.userId},
      coalesce(${field(f.email, 'text')}, ''), ${fieldAt(f.email)},
      coalesce(${field(name, 'text')}, ''), ${fieldAt(name)},
      coalesce(${field(f.role, 'text')}, 'user'), ${fieldAt(f.role)},
      coalesce(${field(f.emailVerified, 'boolean')}, false), ${fieldAt(f.emailVerified)},
      ${defaultTier}, ${at}::timestamptz, now()
    )
    on conflict (id) do update set
      email = case when excluded.email_at > d.email_at then excluded.email else d.email end,
      email_at = greatest(d.email_at, excluded.email_at),
      name = case when excluded.name_at > d.name_at then excluded.name else d.name end,
      name_at = greatest(d.name_at, excluded.name_at),
      role = case when excluded.role_at > d.role_at then excluded.role else d.role end,
      role_at = greatest(d.role_at, excluded.role_at),
      email_verified = case when excluded.email_verified_at > d.email_verified_at then excluded.email_verified else d.email_verified end,
      email_verified_at = greatest(d.email_verified_at, excluded.email_verified_at),
      created_at = least(d.created_at, excluded.created_at),
      updated_at = now()`);
}

async function isErased(tx: Conn, pseudonym: string): Promise<boolean> {
  const rows = await tx.select({ p: erasedUsers.pseudonym }).from(erasedUsers).where(eq(erasedUsers.pseudonym, pseudonym)).limit(1);
  return rows.length > 0;
}

/*
 * Who may write an erased user's row. A tombstone check and the write after it are two statements (and a row
 * that does not exist yet cannot be locked), so an erasure committing between them would leave the row behind;
 * these transaction-scoped advisory locks order the writes with the erasure instead. Under READ COMMITTED
 * every statement after the lock is granted sees what the other side committed:
 *   - an event's write takes the user's lock, then checks the tombstone and writes;
 *   - the erasure takes the directory's lock (shared) and the user's, then deletes the row and tombstones it;
 *   - the resync takes the directory's lock (exclusive: one per user would be a million locks), then writes
 *     every user it read from auth-svc except the tombstoned ones.
 * Whichever comes second sees the first: the erasure deletes the row the write committed, or the write (the
 * resync) sees the tombstone the erasure committed.
 */
const DIRECTORY_LOCK = sql`hashtextextended('admin.directory', 0)`;
const userLock = (userId: string) => sql`hashtextextended(${`admin.directory:${userId}`}, 0)`;

/** The erasure's locks: the resync waits for it (and it for the resync), the user's writes too. */
export async function lockForErasure(tx: Conn, userId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock_shared(${DIRECTORY_LOCK}), pg_advisory_xact_lock(${userLock(userId)})`);
}

/** The resync's lock: no erasure runs while it writes. Taken after it read auth-svc's pages, before it writes. */
export async function lockDirectory(tx: Conn): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${DIRECTORY_LOCK})`);
}

/**
 * The id an audit entry names its target by: the user's pseudonym once erased. Takes the user's lock (first in
 * its transaction, as the erasure does, so a row lock taken after cannot deadlock with it): an erasure still
 * running waits for the entry and pseudonymizes it, an erasure that committed is seen here.
 */
export async function auditTargetOf(tx: Conn, userId: string, pseudonym: string): Promise<string> {
  await tx.execute(sql`select pg_advisory_xact_lock(${userLock(userId)})`);
  return (await isErased(tx, pseudonym)) ? pseudonym : userId;
}

/**
 * An event's facts about a user, unless the user was erased (the tombstone, by keyed pseudonym): a late event
 * cannot bring the row back, nor one that races the erasure (see the locks above).
 */
export async function applyUnlessErased(tx: Conn, f: UserFacts, defaultTier: string, pseudonym: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${userLock(f.userId)})`);
  if (await isErased(tx, pseudonym)) return;
  await applyUserFacts(tx, f, defaultTier);
}

/** A ban counts while it has not expired: an expired ban lifts itself, no job needed. */
const bannedNow = sql<boolean>`(${d.banned} and (${d.banExpiresAt} is null or ${d.banExpiresAt} > now()))`;

const rowColumns = {
  id: d.id,
  email: d.email,
  name: d.name,
  role: d.role,
  tier: d.tier,
  emailVerified: d.emailVerified,
  banned: bannedNow,
  banReason: d.banReason,
  banExpiresAt: d.banExpiresAt,
  createdAt: d.createdAt,
};

export type DirectoryRow = {
  id: string;
  email: string;
  name: string;
  role: string;
  tier: string;
  emailVerified: boolean;
  banned: boolean;
  banReason: string | null;
  banExpiresAt: Date | null;
  createdAt: Date;
};

export async function findUser(tx: Conn, userId: string): Promise<DirectoryRow | undefined> {
  const [row] = await tx.select(rowColumns).from(d).where(eq(d.id, userId)).limit(1);
  return row;
}

export interface DirectoryFilter {
  search?: string;
  role?: string;
  tier?: string;
  banned?: boolean;
  emailVerified?: boolean;
  createdFrom?: Date;
  createdTo?: Date;
}

export const SORTS = ['createdAt', '-createdAt', 'email', '-email', 'name', '-name'] as const;
export type Sort = (typeof SORTS)[number];

const SORT_COLUMNS = {
  createdAt: { col: d.createdAt, cast: 'timestamptz' },
  email: { col: d.email, cast: 'text' },
  name: { col: d.name, cast: 'text' },
} as const;

/** LIKE metacharacters in a search term are literal. */
const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function whereOf(f: DirectoryFilter): SQL | undefined {
  return and(
    // The expression of the trigram index (migration 0003): prefix and substring, case-insensitive.
    f.search ? sql`(lower(${d.email}) || ' ' || lower(${d.name})) like ${`%${likeEscape(f.search.toLowerCase())}%`}` : undefined,
    f.role !== undefined ? eq(d.role, f.role) : undefined,
    f.tier !== undefined ? eq(d.tier, f.tier) : undefined,
    f.banned === undefined ? undefined : f.banned ? bannedNow : not(bannedNow),
    f.emailVerified !== undefined ? eq(d.emailVerified, f.emailVerified) : undefined,
    f.createdFrom ? gte(d.createdAt, f.createdFrom) : undefined,
    f.createdTo ? lte(d.createdAt, f.createdTo) : undefined,
  );
}

function orderOf(sort: Sort) {
  const descending = sort.startsWith('-');
  const { col } = SORT_COLUMNS[sort.replace('-', '') as keyof typeof SORT_COLUMNS];
  return descending ? [desc(col), desc(d.id)] : [asc(col), asc(d.id)];
}

export async function listPage(tx: Conn, f: DirectoryFilter, sort: Sort, page: number, limit: number) {
  const where = whereOf(f);
  // The page and its total on two connections at once (called with the pool; inside a transaction they queue).
  const [users, [total]] = await Promise.all([
    tx
      .select(rowColumns)
      .from(d)
      .where(where)
      .orderBy(...orderOf(sort))
      .limit(limit)
      .offset((page - 1) * limit),
    tx.select({ n: count() }).from(d).where(where),
  ]);
  return { users, total: Number(total?.n ?? 0) };
}

/** Where the previous keyset page ended: the sort value and the id of its last row. */
export interface KeysetPosition {
  value: string;
  id: string;
}

export async function listKeyset(tx: Conn, f: DirectoryFilter, sort: Sort, after: KeysetPosition | undefined, limit: number) {
  const descending = sort.startsWith('-');
  const { col, cast } = SORT_COLUMNS[sort.replace('-', '') as keyof typeof SORT_COLUMNS];
  const position = after
    ? descending
      ? sql`(${col}, ${d.id}) < (${after.value}::${sql.raw(cast)}, ${after.id})`
      : sql`(${col}, ${d.id}) > (${after.value}::${sql.raw(cast)}, ${after.id})`
    : undefined;
  const rows = await tx
    .select(rowColumns)
    .from(d)
    .where(and(whereOf(f), position))
    .orderBy(...orderOf(sort))
    .limit(limit + 1);
  const users = rows.slice(0, limit);
  const last = users.at(-1);
  const key = sort.replace('-', '') as keyof typeof SORT_COLUMNS;
  const next: KeysetPosition | undefined =
    rows.length > limit && last ? { value: key === 'createdAt' ? last.createdAt.toISOString() : last[key], id: last.id } : undefined;
  return { users, next };
}

export async function setTier(tx: Conn, userId: string, tier: string): Promise<string | undefined> {
  const [before] = await tx.select({ tier: d.tier }).from(d).where(eq(d.id, userId)).for('update');
  if (!before) return undefined;
  await tx
    .update(d)
    .set({ tier, updatedAt: sql`now()` })
    .where(eq(d.id, userId));
  return before.tier;
}

export async function setBan(tx: Conn, userId: string, ban: { reason: string; expiresAt: Date | null } | null): Promise<void> {
  await tx
    .update(d)
    .set({ banned: ban !== null, banReason: ban?.reason ?? null, banExpiresAt: ban?.expiresAt ?? null, updatedAt: sql`now()` })
    .where(eq(d.id, userId));
}

/** After a role change auth-svc confirmed: the event that follows carries the same value. */
export async function setRole(tx: Conn, userId: string, role: string): Promise<void> {
  await tx
    .update(d)
    .set({ role, roleAt: sql`now()`, updatedAt: sql`now()` })
    .where(eq(d.id, userId));
}
