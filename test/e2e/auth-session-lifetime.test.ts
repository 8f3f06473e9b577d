import { drizzle } from 'drizzle-orm/node-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call, cookieFetch } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified, type TokenPair } from '../helpers/users';
import * as authTables from '../../auth-svc/src/db/schema';
import { applySessionPolicy } from '../../auth-svc/src/domain/sessions';

const DAY = 24 * 3600;
/** Longer than the 7-day idle expiry, so both the slide and the cap can be seen. */
const MAX_LIFETIME = 8 * DAY;

interface SessionTimes {
  lifetime: number;
  fromNow: number;
}

describe('refresh-token chain and absolute session lifetime', () => {
  let s: Stack;
  const v1 = (path: string) => `${s.gatewayUrl}/api/v1/auth${path}`;
  const refresh = (refreshToken: string) => call<TokenPair & { error?: string }>(v1('/refresh'), { body: { refreshToken } });
  const sidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { sid: string }).sid;
  /** Seconds from sign-in to expiry, and from now to expiry, of one session row. */
  const times = async (sid: string): Promise<SessionTimes | undefined> => {
    const r = await s.sql.query<SessionTimes>(
      `select extract(epoch from expires_at - created_at)::float8 as lifetime, extract(epoch from expires_at - now())::float8 as "fromNow"
         from auth.session where id = $1`,
      [sid],
    );
    return r.rows[0];
  };
  /** Moves the sign-in back in time (the cap trigger re-applies to the row's expiry). */
  const signedInAgo = (sid: string, seconds: number) =>
    s.sql.query(`update auth.session set created_at = now() - make_interval(secs => $2) where id = $1`, [sid, seconds]);

  beforeAll(async () => {
    s = await startStack({ env: { SESSION_MAX_LIFETIME_SECONDS: String(MAX_LIFETIME) } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a double-submit inside the grace window gets the same successor; the chain continues; reuse after the window ends the session', async () => {
    const { email, password } = await registerVerified(s);
    const pair = await login(s, email, password);
    const sid = sidOf(pair.accessToken);

    const first = await refresh(pair.refreshToken);
    const again = await refresh(pair.refreshToken);
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(again.body.refreshToken).toBe(first.body.refreshToken);
    expect(first.body.refreshToken).not.toBe(pair.refreshToken);

    // Concurrent double-submit of the next token: one successor as well.
    const both = await Promise.all([1, 2].map(() => refresh(first.body.refreshToken)));
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(both[0]?.body.refreshToken).toBe(both[1]?.body.refreshToken);

    // The chain continues from the shared successor.
    const next = await refresh(both[0]?.body.refreshToken ?? '');
    expect(next.status).toBe(200);
    expect((await call(v1('/session'), { token: next.body.accessToken })).status).toBe(200);

    // One chain: login + three successors, nothing else; successors are stored sealed, never in clear.
    const rows = await s.sql.query<{ successor_sealed: string | null }>(
      'select successor_sealed from auth.refresh_tokens where session_id = $1 order by created_at',
      [sid],
    );
    expect(rows.rows).toHaveLength(4);
    const sealed = rows.rows.map((r) => r.successor_sealed ?? '').join(' ');
    for (const token of [first.body.refreshToken, both[0]?.body.refreshToken ?? '', next.body.refreshToken]) {
      expect(sealed).not.toContain(token);
      expect(sealed).not.toContain(Buffer.from(token).toString('base64url'));
    }

    // The first token presented again after the grace window: the whole session ends.
    await s.sql.query(
      `update auth.refresh_tokens set used_at = now() - interval '1 minute' where session_id = $1 and used_at is not null`,
      [sid],
    );
    const reuse = await refresh(pair.refreshToken);
    expect(reuse.status).toBe(401);
    expect(reuse.body.error).toBe('REFRESH_TOKEN_REUSED');
    expect((await refresh(next.body.refreshToken)).body.error).toBe('INVALID_REFRESH_TOKEN');
    await eventually(async () => (await call(v1('/session'), { token: next.body.accessToken })).status === 401, 3_000);
  });

  it('a sealed successor from another session cannot be opened by this token: the exchange is a reuse', async () => {
    const { email, password } = await registerVerified(s);
    const a = await login(s, email, password);
    const b = await login(s, email, password);
    expect((await refresh(a.refreshToken)).status).toBe(200);
    expect((await refresh(b.refreshToken)).status).toBe(200);
    // Copy a's sealed successor onto b's spent row: b's double-submit must not hand out a's token.
    await s.sql.query(
      `update auth.refresh_tokens set successor_sealed = (select successor_sealed from auth.refresh_tokens where session_id = $1 and used_at is not null)
        where session_id = $2 and used_at is not null`,
      [sidOf(a.accessToken), sidOf(b.accessToken)],
    );
    const replay = await refresh(b.refreshToken);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('REFRESH_TOKEN_REUSED');
  });

  it('refreshes slide the 7-day idle expiry but never past the absolute lifetime; after it, refresh is 401 and the session is gone', async () => {
    const { email, password } = await registerVerified(s);
    const pair = await login(s, email, password);
    const sid = sidOf(pair.accessToken);

    // Young session: a refresh slides the idle expiry to 7 days from now.
    const r1 = await refresh(pair.refreshToken);
    expect(r1.status).toBe(200);
    expect((await times(sid))?.fromNow).toBeCloseTo(7 * DAY, -1);

    // Signed in 2 days ago: 7 days from now would pass the 8-day lifetime, so the expiry stops at it.
    await signedInAgo(sid, 2 * DAY);
    const r2 = await refresh(r1.body.refreshToken);
    expect(r2.status).toBe(200);
    const capped = await times(sid);
    expect(capped?.lifetime).toBeCloseTo(MAX_LIFETIME, 0);
    expect(capped?.fromNow).toBeCloseTo(6 * DAY, -1);

    // Past the lifetime: refresh answers 401, the session row is gone and its revocation published.
    await signedInAgo(sid, MAX_LIFETIME + 1);
    const late = await refresh(r2.body.refreshToken);
    expect(late.status).toBe(401);
    expect(late.body.error).toBe('INVALID_REFRESH_TOKEN');
    expect(await times(sid)).toBeUndefined();
    await s.waitForEvent('session.revoked.v1', (e) => (e.data as { sessionId?: string }).sessionId === sid);
    await eventually(async () => (await call(v1('/session'), { token: r2.body.accessToken })).status === 401, 3_000);
  });

  it('Better Auth cookie sessions get the same cap: sign-in and its cookie refresh stop at sign-in + the lifetime', async () => {
    const { email, password } = await registerVerified(s);
    const jar = cookieFetch(s.gatewayUrl);
    const signIn = await call(`${s.gatewayUrl}/api/auth/sign-in/email`, { body: { email, password }, fetch: jar.fetch });
    expect(signIn.status).toBe(200);
    const getSession = () =>
      call<{ session: { id: string; expiresAt: string } } | null>(`${s.gatewayUrl}/api/auth/get-session`, { fetch: jar.fetch });
    const fresh = await getSession();
    const sid = fresh.body?.session.id ?? '';
    expect((await times(sid))?.fromNow).toBeCloseTo(7 * DAY, -1);

    // Two days later Better Auth refreshes the cookie session (older than its updateAge): capped.
    await signedInAgo(sid, 2 * DAY);
    await s.sql.query(`update auth.session set expires_at = now() + interval '5 days' where id = $1`, [sid]);
    const refreshed = await getSession();
    expect(refreshed.body?.session.id).toBe(sid);
    const capped = await times(sid);
    expect(capped?.lifetime).toBeCloseTo(MAX_LIFETIME, 0);
    expect(capped?.fromNow).toBeCloseTo(6 * DAY, -1);

    // Past the lifetime the cookie is worth nothing.
    await signedInAgo(sid, MAX_LIFETIME + 1);
    expect((await getSession()).body).toBeNull();
  });

  it('a lifetime lowered at the next start caps the sessions that exist, not only their next write', async () => {
    const { email, password } = await registerVerified(s);
    const sid = sidOf((await login(s, email, password)).accessToken);
    expect((await times(sid))?.lifetime).toBeGreaterThan(6 * DAY);
    const db = drizzle(s.sql, { schema: authTables });
    try {
      await applySessionPolicy(db, DAY); // what auth-svc does at start with SESSION_MAX_LIFETIME_SECONDS=86400
      expect((await times(sid))?.lifetime).toBeCloseTo(DAY, 0);
    } finally {
      await applySessionPolicy(db, MAX_LIFETIME);
    }
    // Raising it again does not lengthen a session (only a refresh writes a new expiry).
    expect((await times(sid))?.lifetime).toBeCloseTo(DAY, 0);
  });
});
