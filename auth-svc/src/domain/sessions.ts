import { and, desc, eq, gt, isNull, lte, ne, or, sql } from 'drizzle-orm';
import { causeChain } from '@mana/shared';
import * as tables from '../db/schema';
import { preparedStatement } from '../db/prepared';
import type { Conn, Db } from '../db/types';
import type { SuccessorSeal } from './refresh-seal';
import { recordSecurityEvent, type RequestMeta } from './security-events';
import { REFRESH_GRACE_SECONDS, REFRESH_TOKEN_TTL_SECONDS, hashRefreshToken, newRefreshToken } from './tokens';

// Ending a session is deleting its row: the trigger on `auth.session` records the revocation and
// writes session.revoked.v1 in the same transaction, and the refresh-token family goes with it (FK).

export type UserRow = typeof tables.user.$inferSelect;
export type SessionRow = typeof tables.session.$inferSelect;

const liveSessionsStatement = preparedStatement((db) =>
  db
    .select({ session: tables.session, user: tables.user })
    .from(tables.session)
    .innerJoin(tables.user, eq(tables.user.id, tables.session.userId))
    .where(and(sql`${tables.session.id} = any(${sql.placeholder('sessionIds')}::text[])`, gt(tables.session.expiresAt, sql`now()`)))
    .prepare('auth_live_sessions'),
);

type LiveSession = { session: SessionRow; user: UserRow };
type Waiter = { userId: string; resolve: (found: LiveSession | undefined) => void; reject: (err: unknown) => void };

/**
 * Bearer checks that arrive together share one statement: every check queued while the event loop handles
 * one round of I/O is answered by a single `session.id = any($1)` read, sent once that round is over
 * (setImmediate). The read starts after each of its requests arrived, so each still sees every session ended
 * before it arrived — the same guarantee as a read of its own, one round trip instead of many under load.
 */
function liveSessionBatcher(db: Db) {
  let queued: Map<string, Waiter[]> | undefined;
  const flush = async (batch: Map<string, Waiter[]>) => {
    try {
      const rows = await liveSessionsStatement(db).execute({ sessionIds: [...batch.keys()] });
      const byId = new Map(rows.map((r) => [r.session.id, r]));
      for (const [sessionId, waiters] of batch) {
        const found = byId.get(sessionId);
        for (const w of waiters) w.resolve(found?.session.userId === w.userId ? found : undefined);
      }
    } catch (err) {
      for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
    }
  };
  return (sessionId: string, userId: string) =>
    new Promise<LiveSession | undefined>((resolve, reject) => {
      if (!queued) {
        const batch = new Map<string, Waiter[]>();
        queued = batch;
        setImmediate(() => {
          queued = undefined;
          void flush(batch);
        });
      }
      const waiters = queued.get(sessionId);
      if (waiters) waiters.push({ userId, resolve, reject });
      else queued.set(sessionId, [{ userId, resolve, reject }]);
    });
}

const liveSessionBatchers = new WeakMap<Db, ReturnType<typeof liveSessionBatcher>>();

/**
 * The bearer check every authenticated request makes: the live session of that id and user, with the user.
 * A prepared statement (planned once per connection), shared by the checks that arrive together.
 */
export async function findLiveSessionFast(db: Db, sessionId: string, userId: string): Promise<LiveSession | undefined> {
  let batcher = liveSessionBatchers.get(db);
  if (!batcher) {
    batcher = liveSessionBatcher(db);
    liveSessionBatchers.set(db, batcher);
  }
  return batcher(sessionId, userId);
}

/** The session and its user, when the session has not ended (deleted or expired). */
export async function findLiveSession(
  conn: Conn,
  sessionId: string,
  userId?: string,
): Promise<{ session: SessionRow; user: UserRow } | undefined> {
  const rows = await conn
    .select({ session: tables.session, user: tables.user })
    .from(tables.session)
    .innerJoin(tables.user, eq(tables.user.id, tables.session.userId))
    .where(
      and(
        eq(tables.session.id, sessionId),
        gt(tables.session.expiresAt, sql`now()`),
        userId === undefined ? undefined : eq(tables.session.userId, userId),
      ),
    )
    .limit(1);
  return rows[0];
}

export async function listSessions(conn: Conn, userId: string): Promise<SessionRow[]> {
  return conn
    .select()
    .from(tables.session)
    .where(and(eq(tables.session.userId, userId), gt(tables.session.expiresAt, sql`now()`)))
    .orderBy(desc(tables.session.updatedAt));
}

/** Ends one of the user's sessions; false when there is no such session. */
export async function endSession(
  db: Db,
  userId: string,
  sessionId: string,
  meta: RequestMeta,
  type: 'session_revoked' | 'sign_out' = 'session_revoked',
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const gone = await tx
      .delete(tables.session)
      .where(and(eq(tables.session.id, sessionId), eq(tables.session.userId, userId)))
      .returning({ id: tables.session.id });
    if (gone.length === 0) return false;
    await recordSecurityEvent(tx, { userId, type, meta, context: { sessionId } });
    return true;
  });
}

/** Ends every session of the user except `keepSessionId`; returns the ids of those that ended. */
export async function endOtherSessions(db: Db, userId: string, keepSessionId: string, meta: RequestMeta): Promise<string[]> {
  return db.transaction(async (tx) => {
    const gone = await tx
      .delete(tables.session)
      .where(and(eq(tables.session.userId, userId), ne(tables.session.id, keepSessionId)))
      .returning({ id: tables.session.id });
    if (gone.length > 0)
      await recordSecurityEvent(tx, { userId, type: 'sessions_revoked', meta, context: { count: gone.length, kept: keepSessionId } });
    return gone.map((g) => g.id);
  });
}

/** Starts (or continues) the refresh-token family of a session; returns the opaque token. */
export async function issueRefreshToken(conn: Conn, sessionId: string, userId: string): Promise<string> {
  const token = newRefreshToken();
  await conn.insert(tables.refreshTokens).values({
    tokenHash: hashRefreshToken(token),
    sessionId,
    userId,
    expiresAt: sql`now() + make_interval(secs => ${REFRESH_TOKEN_TTL_SECONDS})`,
  });
  return token;
}

export type RotateResult =
  | { kind: 'rotated'; sessionId: string; refreshToken: string; subject: TokenSubject }
  | { kind: 'invalid' }
  | { kind: 'ended'; sessionId: string }
  | { kind: 'reused'; sessionId: string; userId: string };

/**
 * Exchanges a refresh token for its successor. The row is locked, so two concurrent exchanges of the
 * same token run one after the other. The successor is sealed next to the spent token: the single
 * double-submit the grace window allows gets the *same* successor, so a session has one chain whose
 * reuse detection still fires. Outside the window (or a third exchange) it is a reuse and ends the
 * whole session. A session past its lifetime (idle or absolute, see SESSION_MAX_LIFETIME_SECONDS) is
 * ended here, so its revocation reaches every verifier.
 */
export async function rotateRefreshToken(db: Db, seal: SuccessorSeal, token: string, meta: RequestMeta): Promise<RotateResult> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .select({
        id: tables.refreshTokens.id,
        sessionId: tables.refreshTokens.sessionId,
        userId: tables.refreshTokens.userId,
        expired: sql<boolean>`${tables.refreshTokens.expiresAt} <= now()`,
        usedSecondsAgo: sql<number | null>`extract(epoch from now() - ${tables.refreshTokens.usedAt})::float8`,
        graceExchanges: tables.refreshTokens.graceExchanges,
        successorSealed: tables.refreshTokens.successorSealed,
      })
      .from(tables.refreshTokens)
      .where(eq(tables.refreshTokens.tokenHash, hashRefreshToken(token)))
      .for('update');
    if (!row || row.expired) return { kind: 'invalid' };
    const live = await findLiveSession(tx, row.sessionId, row.userId);
    if (!live) {
      const ended = await tx
        .delete(tables.session)
        .where(and(eq(tables.session.id, row.sessionId), lte(tables.session.expiresAt, sql`now()`)))
        .returning({ id: tables.session.id });
      return ended.length > 0 ? { kind: 'ended', sessionId: row.sessionId } : { kind: 'invalid' };
    }
    const usedSecondsAgo = row.usedSecondsAgo;
    if (usedSecondsAgo === null) {
      const refreshToken = await issueRefreshToken(tx, row.sessionId, row.userId);
      await tx
        .update(tables.refreshTokens)
        .set({ usedAt: sql`now()`, successorSealed: seal.seal(token, refreshToken) })
        .where(eq(tables.refreshTokens.id, row.id));
      await slideSession(tx, row.sessionId);
      return rotated(tx, row.sessionId, refreshToken, meta);
    }
    // A spent token: the single concurrent double-submit of the grace window gets the successor already
    // issued. More than that, or later, is a stolen copy: without the bound, a token stolen in the
    // window could be replayed freely; without the sealed successor, each replay started a new chain.
    const successor = row.successorSealed === null ? undefined : seal.open(token, row.successorSealed);
    if (usedSecondsAgo > REFRESH_GRACE_SECONDS || row.graceExchanges >= 1 || successor === undefined) {
      await tx.delete(tables.session).where(eq(tables.session.id, row.sessionId));
      await recordSecurityEvent(tx, {
        userId: row.userId,
        type: 'refresh_token_reuse',
        meta,
        context: { sessionId: row.sessionId, usedSecondsAgo: Math.round(usedSecondsAgo) },
      });
      return { kind: 'reused', sessionId: row.sessionId, userId: row.userId };
    }
    await tx
      .update(tables.refreshTokens)
      .set({ graceExchanges: sql`${tables.refreshTokens.graceExchanges} + 1` })
      .where(eq(tables.refreshTokens.id, row.id));
    await recordSecurityEvent(tx, {
      userId: row.userId,
      type: 'refresh_token_grace_exchange',
      meta,
      context: { sessionId: row.sessionId, usedSecondsAgo: Math.round(usedSecondsAgo * 10) / 10 },
    });
    await slideSession(tx, row.sessionId);
    return rotated(tx, row.sessionId, successor, meta);
  });
}

/**
 * The rest of a successful exchange, inside its transaction: what the access token is made of and the
 * `token_refreshed` event. Read before the commit, so a database failure here rolls the rotation back and the
 * client can simply retry with the same token; read after it (as it was), a 503 could reach a client whose token
 * was already spent, and its retry after the grace window looked like a stolen copy and ended the session.
 */
async function rotated(conn: Conn, sessionId: string, refreshToken: string, meta: RequestMeta): Promise<RotateResult> {
  const [subject] = await conn
    .select({ sessionId: tables.session.id, user: tables.user, signingKeyId: currentSigningKeyId(conn) })
    .from(tables.session)
    .innerJoin(tables.user, eq(tables.user.id, tables.session.userId))
    .where(and(eq(tables.session.id, sessionId), gt(tables.session.expiresAt, sql`now()`)))
    .limit(1);
  if (!subject) return { kind: 'invalid' };
  await recordSecurityEvent(conn, { userId: subject.user.id, type: 'token_refreshed', meta, context: { sessionId } });
  return { kind: 'rotated', sessionId, refreshToken, subject };
}

/**
 * A refresh is a use of the session: its idle expiry slides to 7 days from now. The trigger
 * `session_cap_expiry` keeps it within the absolute lifetime (created_at + SESSION_MAX_LIFETIME_SECONDS).
 */
async function slideSession(conn: Conn, sessionId: string): Promise<void> {
  await conn
    .update(tables.session)
    .set({ updatedAt: sql`now()`, expiresAt: sql`now() + make_interval(secs => ${REFRESH_TOKEN_TTL_SECONDS})` })
    .where(eq(tables.session.id, sessionId));
}

/**
 * The id of the key the JWT plugin signs with at this instant, as its `resolveSigningKey` picks it: the newest
 * live EdDSA key, else the newest live key. Read along with the session a token is minted for, so the signer's
 * in-memory key is checked against the database on every mint without a round trip of its own (a rotation takes
 * effect with the next token).
 */
function currentSigningKeyId(conn: Conn) {
  const k = tables.jwks;
  const current = conn
    .select({ id: k.id })
    .from(k)
    .where(or(isNull(k.expiresAt), gt(k.expiresAt, sql`now()`)))
    .orderBy(sql`(${k.alg} = 'EdDSA' or ${k.alg} is null) desc`, desc(k.createdAt))
    .limit(1);
  return sql<string | null>`(${current})`;
}

export interface TokenSubject {
  sessionId: string;
  user: UserRow;
  /** The JWT plugin's current signing key (null when there is none yet). */
  signingKeyId: string | null;
}

/**
 * A session Better Auth just created (password sign-in or its second factor) gets its device fields and a
 * refresh-token family, and the answer has what its access token is made of — one statement (the update and
 * the insert are data-modifying CTEs, atomic as one), where it used to be a transaction and a second read.
 * Undefined when no live session has that token.
 */
const startSessionFamilyStatement = preparedStatement((db) => {
  const started = db.$with('started').as(
    db
      .update(tables.session)
      .set({ deviceId: sql`${sql.placeholder('deviceId')}`, deviceName: sql`${sql.placeholder('deviceName')}` })
      .where(and(eq(tables.session.token, sql.placeholder('sessionToken')), gt(tables.session.expiresAt, sql`now()`)))
      .returning({ id: tables.session.id, userId: tables.session.userId }),
  );
  const family = db.$with('family', { id: sql<string>`id` }).as(
    sql`insert into ${tables.refreshTokens} (token_hash, session_id, user_id, expires_at)
        select ${sql.placeholder('tokenHash')}, ${started.id}, ${started.userId}, now() + make_interval(secs => ${REFRESH_TOKEN_TTL_SECONDS})
        from ${started} returning id`,
  );
  return db
    .with(started, family)
    .select({ sessionId: started.id, user: tables.user, signingKeyId: currentSigningKeyId(db) })
    .from(started)
    .innerJoin(tables.user, eq(tables.user.id, started.userId))
    .prepare('auth_start_session_family');
});

export async function startSessionFamily(
  db: Db,
  sessionToken: string,
  device: { deviceId?: string | null; deviceName?: string | null },
): Promise<(TokenSubject & { refreshToken: string }) | undefined> {
  const refreshToken = newRefreshToken();
  const [row] = await startSessionFamilyStatement(db).execute({
    sessionToken,
    deviceId: device.deviceId ?? null,
    deviceName: device.deviceName ?? null,
    tokenHash: hashRefreshToken(refreshToken),
  });
  return row ? { ...row, refreshToken } : undefined;
}

/** Sessions capped per statement when a lower lifetime is applied: each batch holds its row locks only that long. */
const CAP_BATCH = 1000;
/** How long the cap waits for the session writes that were in flight when the lower lifetime was stored. */
const WRITERS_WAIT_MS = 60_000;
/**
 * How long a batch waits for a row another transaction holds before it gives way (and is tried again): the cap locks
 * rows in its own order, so a DELETE of a user's sessions (a ban, a password change) could otherwise deadlock with it.
 */
const CAP_LOCK_TIMEOUT = '50ms';
const CAP_BATCH_TRIES = 10;

/** What a start did about the stored lifetime: nothing to do, the sessions capped, or the cap still owed (retry). */
export type SessionPolicyOutcome = 'unchanged' | 'capped' | 'owed';

/**
 * Writes the absolute session lifetime where the `session_cap_expiry` trigger reads it; every write of a session's
 * expiry from then on is capped at its sign-in + this many seconds. A lifetime lower than the one stored (or the
 * first one) caps the sessions that exist too, not only from their next write. That cap reads the whole session
 * table, so it runs only while the policy row says it is owed (`sessions_capped` false): a start with the lifetime
 * unchanged costs one statement, and a start that could not finish leaves it owed to the next one.
 *
 * Without a table lock: sign-ins and refreshes never wait for it. Once the lower lifetime is committed (so `db`, not a
 * transaction), every session write that starts reads it in its trigger; the ones already in flight may have read
 * the old one, so the cap first waits for the transactions that held a write lock on `auth.session` at that moment
 * to end (as CREATE INDEX CONCURRENTLY waits for older writers), then caps, in batches along the primary key, what
 * they and everyone before wrote. A batch that meets a row lock gives way after CAP_LOCK_TIMEOUT and is tried again.
 */
export async function applySessionPolicy(db: Db, maxLifetimeSeconds: number): Promise<SessionPolicyOutcome> {
  const p = tables.sessionPolicy;
  const [policy] = await db
    .insert(p)
    .values({ id: true, maxLifetimeSeconds, sessionsCapped: false })
    .onConflictDoUpdate({
      target: p.id,
      set: {
        maxLifetimeSeconds,
        updatedAt: sql`now()`,
        // Owed again when the lifetime goes down; still owed when a cap before did not finish.
        sessionsCapped: sql`${p.sessionsCapped} and ${maxLifetimeSeconds} >= ${p.maxLifetimeSeconds}`,
      },
    })
    .returning({ sessionsCapped: p.sessionsCapped });
  if (policy?.sessionsCapped) return 'unchanged';
  if (!(await waitForSessionWriters(db))) return 'owed';
  for (let after = ''; ;) {
    const batch = await capBatch(db, maxLifetimeSeconds, after);
    if (batch === 'busy') return 'owed';
    if (batch.last === null) break;
    after = batch.last;
  }
  // Paid, unless another start lowered the lifetime again meanwhile (then its own cap is owed).
  await db
    .update(p)
    .set({ sessionsCapped: true })
    .where(and(sql`${p.id}`, eq(p.maxLifetimeSeconds, maxLifetimeSeconds)));
  return 'capped';
}

/**
 * Caps the next CAP_BATCH sessions past the cap after `after` (by id); answers the last id it looked at (null at the
 * end of the table), or 'busy' when a row lock held it every time it tried. The cap is checked again on the row it
 * updates, in case a concurrent write changed the expiry between the scan and the update.
 */
async function capBatch(db: Db, maxLifetimeSeconds: number, after: string): Promise<{ last: string | null } | 'busy'> {
  const s = tables.session;
  const cap = sql`${s.createdAt} + make_interval(secs => ${maxLifetimeSeconds})`;
  for (let tries = 0; tries < CAP_BATCH_TRIES; tries++) {
    try {
      return await db.transaction(async (tx) => {
        await tx.execute(sql.raw(`set local lock_timeout = '${CAP_LOCK_TIMEOUT}'`));
        const { rows } = await tx.execute<{ last: string | null }>(sql`
          with batch as materialized (
            select ${s.id} as id from ${s} where ${s.id} > ${after} and ${s.expiresAt} > ${cap} order by ${s.id} limit ${CAP_BATCH}
          ), capped as ( -- runs to completion though nothing reads it (a data-modifying WITH)
            update ${s} set expires_at = ${cap} from batch where ${s.id} = batch.id and ${s.expiresAt} > ${cap}
          )
          select max(id) as last from batch`);
        return { last: rows[0]?.last ?? null };
      });
    } catch (err) {
      if (![...causeChain(err)].some((c) => c.code === '55P03')) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20 * (tries + 1)));
    }
  }
  return 'busy';
}

/**
 * Waits until every transaction that holds a write lock on `auth.session` now has ended (each holds its virtual
 * transaction id's lock until then; pg_locks lists fast-path locks too); false if one is still open after
 * WRITERS_WAIT_MS. Polls, with a backoff: it runs at a start that lowered the lifetime, rarely, and a session write
 * lasts milliseconds.
 */
async function waitForSessionWriters(db: Db): Promise<boolean> {
  const { rows } = await db.execute<{ vxids: string[] | null }>(sql`
    select array_agg(distinct virtualtransaction) as vxids from pg_locks
     where locktype = 'relation' and database = (select oid from pg_database where datname = current_database())
       and relation = ${sql.raw(`'auth.session'::regclass`)} and mode = 'RowExclusiveLock' and pid <> pg_backend_pid()`);
  const vxids = rows[0]?.vxids ?? [];
  const deadline = Date.now() + WRITERS_WAIT_MS;
  for (let pause = 20; vxids.length > 0; pause = Math.min(pause * 2, 500)) {
    const open = await db.execute<{ n: number }>(
      sql`select count(*)::int as n from pg_locks where locktype = 'virtualxid' and virtualxid = any(${sql.param(vxids)}::text[])`,
    );
    if (!open.rows[0]?.n) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
  return true;
}
