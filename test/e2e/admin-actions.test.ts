import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, lockWaiters } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified, uniqueEmail } from '../helpers/users';
import { hiddenField, newBrowser, postForm } from './oidc-helpers';
import { scanForIdentifiers } from '../helpers/erasure-scan';
import { adminApi, directoryRow, makeAdmin, newUserId, waitForRow } from './admin-helpers';

const APP = 'https://app.example.com';

describe('admin-svc: bans, sessions, roles, unlock, erasure, audit', () => {
  let s: Stack;
  let api: ReturnType<typeof adminApi>;
  let admin: Awaited<ReturnType<typeof makeAdmin>>;

  const session = (token: string) => call(`${s.gatewayUrl}/api/v1/auth/session`, { token });
  const signIn = (email: string, password: string) => call(`${s.gatewayUrl}/api/v1/auth/login`, { body: { email, password } });
  const nativeSignIn = (email: string, password: string) =>
    call(`${s.gatewayUrl}/api/auth/sign-in/email`, { body: { email, password }, headers: { origin: new URL(s.gatewayUrl).origin } });
  const audit = async (query: string) =>
    (await api<{ entries: Record<string, unknown>[]; nextCursor: string | null }>('GET', `/audit?${query}`)).body;

  beforeAll(async () => {
    s = await startStack({ services: ['admin', 'gdpr'], env: { MAGIC_LINK_CALLBACK_ALLOWLIST: APP, LOCKOUT_MAX_ATTEMPTS: '3' } });
    admin = await makeAdmin(s);
    api = adminApi(s, admin.token);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a ban ends every session at once and refuses every sign-in path once the password is right (403 ACCOUNT_BANNED)', async () => {
    const user = await registerVerified(s);
    const tokens = await login(s, user.email, user.password);
    const other = await login(s, user.email, user.password);
    await waitForRow(s, user.userId);
    expect((await session(tokens.accessToken)).status).toBe(200);

    const banned = await api('POST', `/users/${user.userId}/ban`, { reason: 'spam' });
    expect(banned).toMatchObject({
      status: 200,
      body: { userId: user.userId, banned: true, bannedReason: 'spam', banExpiresAt: null, sessionsEnded: 2 },
    });
    await s.waitForEvent('session.revoked.v1', (e) => e.type === 'session.revoked.v1' && e.data.userId === user.userId);
    // The gateway refuses the tokens as soon as the revocation reached it.
    await eventually(async () => (await session(tokens.accessToken)).status === 401 && (await session(other.accessToken)).status === 401);
    expect((await call(`${s.gatewayUrl}/api/v1/auth/refresh`, { body: { refreshToken: tokens.refreshToken } })).body).toMatchObject({
      error: 'INVALID_REFRESH_TOKEN',
    });

    // Password: a wrong one is still a plain 401 (the ban tells nothing to someone without the password).
    expect((await signIn(user.email, 'Wrong password 123 abc')).body).toMatchObject({ error: 'INVALID_CREDENTIALS' });
    expect(await signIn(user.email, user.password)).toMatchObject({ status: 403, body: { error: 'ACCOUNT_BANNED' } });
    const native = await nativeSignIn(user.email, user.password);
    expect(native).toMatchObject({ status: 403, body: { code: 'ACCOUNT_BANNED' } });
    // Hosted login (the OIDC provider's page).
    const browser = newBrowser(s);
    const html = await (await browser.fetch(`${s.gatewayUrl}/auth/login`)).text();
    const form = await postForm(
      browser,
      `${s.gatewayUrl}/auth/login`,
      { csrf: hiddenField(html, 'csrf'), oauth_query: hiddenField(html, 'oauth_query'), email: user.email, password: user.password },
      new URL(s.gatewayUrl).origin,
    );
    expect(form.status).toBe(403);
    expect(browser.cookies.has('mana.session_token')).toBe(false);
    // Magic link: the link is valid, the sign-in is refused (no session cookie).
    await call(`${s.gatewayUrl}/api/auth/sign-in/magic-link`, { body: { email: user.email, callbackURL: `${APP}/home` } });
    const mail = await s.smtp.waitFor(user.email, (m) => m.text.includes('/magic-link/verify?'));
    const opened = await fetch(s.smtp.linkIn(mail), { redirect: 'manual' });
    expect(opened.headers.getSetCookie().some((c) => c.startsWith('mana.session_token=') && !/max-age=0/i.test(c))).toBe(false);
    const live = await s.sql.query<{ n: number }>('select count(*)::int as n from auth.session where user_id = $1', [user.userId]);
    expect(live.rows[0]?.n).toBe(0);

    // The directory shows it.
    const detail = await api('GET', `/users/${user.userId}`);
    expect(detail.body).toMatchObject({ banned: true, bannedReason: 'spam', banExpiresAt: null, sessions: 0 });
    const listed = await api<{ users: { id: string }[] }>('GET', `/users?banned=true`);
    expect(listed.body.users.map((u) => u.id)).toEqual([user.userId]);

    // Lifted: signs in again.
    expect((await api('DELETE', `/users/${user.userId}/ban`)).body).toEqual({ userId: user.userId, banned: false });
    expect((await signIn(user.email, user.password)).status).toBe(200);
    expect((await api('GET', `/users/${user.userId}`)).body).toMatchObject({ banned: false, sessions: 1 });
    const trail = await audit(`targetId=${user.userId}`);
    expect(trail.entries.map((e) => e.action)).toEqual(['ban.lift', 'ban.set']);
    expect(trail.entries[1]).toMatchObject({
      actorId: admin.userId,
      reason: 'spam',
      changes: { outcome: 'ok', sessionsEnded: 2, expiresAt: null },
    });
  });

  it('a ban with expiresAt lifts itself once that time has passed', async () => {
    const user = await registerVerified(s);
    await waitForRow(s, user.userId);
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const res = await api('POST', `/users/${user.userId}/ban`, { reason: 'cool down', expiresAt: until });
    expect(res.body).toMatchObject({ banned: true, banExpiresAt: until });
    expect((await signIn(user.email, user.password)).status).toBe(403);
    // Time passes (the stored expiry moves into the past instead of the test waiting an hour).
    await s.sql.query(`update auth.user_bans set expires_at = now() - interval '1 second' where user_id = $1`, [user.userId]);
    await s.sql.query(`update admin.directory_users set ban_expires_at = now() - interval '1 second' where id = $1`, [user.userId]);
    expect((await signIn(user.email, user.password)).status).toBe(200);
    expect((await api('GET', `/users/${user.userId}`)).body).toMatchObject({ banned: false });
    expect((await api<{ users: { id: string }[] }>('GET', `/users?banned=false&search=${user.email}`)).body.users).toHaveLength(1);
    const past = await api<{ details: { path: string }[] }>('POST', `/users/${user.userId}/ban`, {
      reason: 'x',
      expiresAt: '2020-01-01T00:00:00Z',
    });
    expect(past.status).toBe(400);
    expect(past.body.details.map((d) => d.path)).toEqual(['expiresAt']);
  });

  it("a ban committing while a sign-in's session insert waits on the user row still refuses it (no session survives)", async () => {
    const user = await registerVerified(s);
    const client = await s.sql.connect();
    let pending: ReturnType<typeof signIn> | undefined;
    try {
      await client.query('begin');
      // banUser's first step: the user row FOR UPDATE, held until its commit.
      await client.query('select id from auth."user" where id = $1 for update', [user.userId]);
      pending = signIn(user.email, user.password);
      // The sign-in's password check passed and its session insert waits on the row (its trigger's FOR SHARE).
      await eventually(async () => (await lockWaiters(s.sql, 'insert into %session%')) > 0);
      await client.query(`insert into auth.user_bans (user_id, reason) values ($1, 'race')`, [user.userId]);
      await client.query('commit');
    } finally {
      await client.query('rollback').catch(() => {});
      client.release();
    }
    expect(await pending).toMatchObject({ status: 403, body: { error: 'ACCOUNT_BANNED' } });
    const live = await s.sql.query('select 1 from auth.session where user_id = $1', [user.userId]);
    expect(live.rowCount).toBe(0);
  });

  it('refuses to ban oneself (CANNOT_TARGET_SELF) and unknown users (USER_NOT_FOUND)', async () => {
    expect(await api('POST', `/users/${admin.userId}/ban`, { reason: 'oops' })).toMatchObject({
      status: 400,
      body: { error: 'CANNOT_TARGET_SELF' },
    });
    expect(await api('POST', `/users/${newUserId()}/ban`, { reason: 'x' })).toMatchObject({
      status: 404,
      body: { error: 'USER_NOT_FOUND' },
    });
    expect((await api<{ details: { path: string }[] }>('POST', `/users/${admin.userId}/ban`, {})).body.details.map((d) => d.path)).toEqual([
      'reason',
    ]);
  });

  it('ends all sessions of a user; shows sessions count and last sign-in', async () => {
    const user = await registerVerified(s);
    const a = await login(s, user.email, user.password);
    await login(s, user.email, user.password);
    await waitForRow(s, user.userId);
    const detail = await api<{ sessions: number; lastSignInAt: string }>('GET', `/users/${user.userId}`);
    expect(detail.body.sessions).toBe(2);
    expect(Date.parse(detail.body.lastSignInAt)).not.toBeNaN();
    expect((await api('POST', `/users/${user.userId}/sessions/revoke`)).body).toEqual({ userId: user.userId, sessionsEnded: 2 });
    await eventually(async () => (await session(a.accessToken)).status === 401);
    expect((await api('GET', `/users/${user.userId}`)).body).toMatchObject({ sessions: 0 });
    expect((await audit(`targetId=${user.userId}&action=sessions.revoke`)).entries[0]).toMatchObject({
      changes: { outcome: 'ok', sessionsEnded: 2 },
    });
  });

  it('changes roles like the set-role command; the last admin cannot be demoted (LAST_ADMIN)', async () => {
    expect(await api('PUT', `/users/${admin.userId}/role`, { role: 'user' })).toMatchObject({ status: 409, body: { error: 'LAST_ADMIN' } });
    const user = await registerVerified(s);
    await waitForRow(s, user.userId);
    expect((await api('PUT', `/users/${user.userId}/role`, { role: 'admin' })).body).toEqual({
      userId: user.userId,
      role: 'admin',
      changed: true,
    });
    const event = await s.waitForEvent(
      'user.updated.v1',
      (e) => e.type === 'user.updated.v1' && e.data.userId === user.userId && e.data.changes.role === 'admin',
    );
    expect(event.type === 'user.updated.v1' && event.data.changes).toEqual({ role: 'admin' });
    expect((await login(s, user.email, user.password)).user.role).toBe('admin');
    expect((await directoryRow(s, user.userId))?.role).toBe('admin');
    expect((await api('PUT', `/users/${user.userId}/role`, { role: 'user' })).body).toMatchObject({ changed: true });
    expect((await api('PUT', `/users/${user.userId}/role`, { role: 'root' })).status).toBe(400);
    const trail = await audit(`targetId=${user.userId}&action=role.set`);
    expect(trail.entries.map((e) => e.changes)).toEqual([
      expect.objectContaining({ from: 'admin', to: 'user', sessionsEnded: 1 }),
      expect.objectContaining({ from: 'user', to: 'admin' }),
    ]);
    const failed = await audit(`targetId=${admin.userId}&action=role.set`);
    expect(failed.entries[0]).toMatchObject({ changes: { outcome: 'failed', error: 'LAST_ADMIN' } });
  });

  it('lifts a sign-in lockout', async () => {
    const user = await registerVerified(s);
    await waitForRow(s, user.userId);
    for (let i = 0; i < 3; i++) await signIn(user.email, `Wrong password ${i} abc`);
    expect((await signIn(user.email, user.password)).status).toBe(401);
    expect((await api('POST', `/users/${user.userId}/unlock`)).body).toEqual({ userId: user.userId, unlocked: true });
    expect((await signIn(user.email, user.password)).status).toBe(200);
    expect((await audit(`targetId=${user.userId}&action=lockout.unlock`)).entries).toHaveLength(1);
  });

  it("shows the user data summary and erases through gdpr-svc (202); never one's own account (USE_SELF_SERVICE)", async () => {
    const user = await registerVerified(s, uniqueEmail('erase'));
    await waitForRow(s, user.userId);
    await api('PUT', `/users/${user.userId}/tier`, { tier: 'founder' });
    const data = await api('GET', `/users/${user.userId}/data`);
    expect(data.status).toBe(200);
    expect(JSON.stringify(data.body)).toContain(user.email);
    expect(JSON.stringify(data.body)).toContain('founder');

    expect(await api('DELETE', `/users/${admin.userId}/data`, { reason: 'me' })).toMatchObject({
      status: 400,
      body: { error: 'USE_SELF_SERVICE' },
    });
    expect((await api('DELETE', `/users/${user.userId}/data`, {})).status).toBe(400);
    const erased = await api<{ requestId: string; statusUrl: string }>('DELETE', `/users/${user.userId}/data`, {
      reason: 'support ticket 42',
    });
    expect(erased.status).toBe(202);
    expect(erased.body.statusUrl).toContain(`/api/v1/gdpr/erasures/${erased.body.requestId}`);
    await s.waitForEvent(
      'user.erasure.completed.v1',
      (e) => e.type === 'user.erasure.completed.v1' && e.data.requestId === erased.body.requestId && e.data.service === 'admin',
    );
    await eventually(async () => (await directoryRow(s, user.userId)) === undefined);
    // The admin's audit entries about the user keep a pseudonym instead of the id.
    const dump = JSON.stringify((await s.sql.query('select * from admin.audit_log')).rows);
    expect(dump).not.toContain(user.userId);
    const entries = (await audit('action=data.erase')).entries;
    expect(entries[0]).toMatchObject({
      actorId: admin.userId,
      reason: 'support ticket 42',
      changes: { outcome: 'ok', requestId: erased.body.requestId },
    });
    expect(String(entries[0]?.targetId)).toMatch(/^erased:/);
  });

  it('answers 503 SOURCE_UNAVAILABLE while gdpr-svc is down, and audits the failed erasure', async () => {
    const user = await registerVerified(s);
    await waitForRow(s, user.userId);
    await s.stopService('gdpr');
    try {
      expect(await api('GET', `/users/${user.userId}/data`)).toMatchObject({ status: 503, body: { error: 'SOURCE_UNAVAILABLE' } });
      expect(await api('DELETE', `/users/${user.userId}/data`, { reason: 'x' })).toMatchObject({
        status: 503,
        body: { error: 'SOURCE_UNAVAILABLE' },
      });
      expect((await audit(`targetId=${user.userId}&action=data.erase`)).entries[0]).toMatchObject({
        changes: { outcome: 'failed', error: 'SOURCE_UNAVAILABLE' },
      });
    } finally {
      await s.startService('gdpr');
    }
  });

  it('pages the audit trail with a cursor and filters by actor', async () => {
    const first = await audit(`actorId=${admin.userId}&limit=2`);
    expect(first.entries).toHaveLength(2);
    expect(first.nextCursor).toBeTruthy();
    const second = await audit(`actorId=${admin.userId}&limit=2&cursor=${first.nextCursor}`);
    expect(Number(second.entries[0]?.id)).toBeLessThan(Number(first.entries[1]?.id));
    for (const e of [...first.entries, ...second.entries]) {
      expect(Object.keys(e).sort()).toEqual([
        'action',
        'actorId',
        'changes',
        'createdAt',
        'id',
        'ipAddress',
        'reason',
        'requestId',
        'targetId',
      ]);
      expect(e.actorId).toBe(admin.userId);
    }
  });

  // Last in the file: it adds a second admin (the LAST_ADMIN case above needs a single one).
  it('erase, role, ban and tier need a recent sign-in or re-auth (401 REAUTH_REQUIRED, nothing changes); POST /api/v1/auth/reauth unlocks them', async () => {
    const other = await makeAdmin(s);
    const otherApi = adminApi(s, other.token);
    const user = await registerVerified(s);
    await waitForRow(s, user.userId);
    // The admin's sign-in (and any re-auth) moves beyond REAUTH_MAX_AGE_SECONDS (300) into the past: a stolen token.
    const sid = (JSON.parse(Buffer.from(other.token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sid: string }).sid;
    await s.sql.query(`update auth.session set created_at = created_at - interval '1 hour' where id = $1`, [sid]);
    await s.sql.query(`update auth.session_reauth set reauthenticated_at = reauthenticated_at - interval '1 hour' where session_id = $1`, [
      sid,
    ]);

    const writes: [string, string, unknown?][] = [
      ['DELETE', `/users/${user.userId}/data`, { reason: 'stolen token' }],
      ['PUT', `/users/${user.userId}/role`, { role: 'admin' }],
      ['POST', `/users/${user.userId}/ban`, { reason: 'stolen token' }],
      ['DELETE', `/users/${user.userId}/ban`],
      ['PUT', `/users/${user.userId}/tier`, { tier: 'founder' }],
    ];
    for (const [method, path, body] of writes)
      expect(await otherApi(method, path, body), `${method} ${path}`).toMatchObject({ status: 401, body: { error: 'REAUTH_REQUIRED' } });
    // Reads and ending sessions do not need it.
    expect((await otherApi('GET', `/users/${user.userId}`)).status).toBe(200);
    expect((await otherApi('POST', `/users/${user.userId}/sessions/revoke`)).status).toBe(200);
    // Nothing changed: no ban, role, tier, erasure, and nothing audited but the session revocation.
    expect(await directoryRow(s, user.userId)).toMatchObject({ role: 'user', tier: 'public', banned: false });
    expect((await s.sql.query('select 1 from auth.user_bans where user_id = $1', [user.userId])).rowCount).toBe(0);
    expect((await s.sql.query<{ role: string }>('select role from auth."user" where id = $1', [user.userId])).rows[0]?.role).toBe('user');
    expect((await audit(`targetId=${user.userId}`)).entries.map((e) => e.action)).toEqual(['sessions.revoke']);

    const reauth = await call(`${s.gatewayUrl}/api/v1/auth/reauth`, { body: { password: other.password }, token: other.token });
    expect(reauth.status).toBe(200);
    expect((await otherApi('PUT', `/users/${user.userId}/tier`, { tier: 'founder' })).body).toEqual({
      userId: user.userId,
      tier: 'founder',
    });
    expect((await otherApi('POST', `/users/${user.userId}/ban`, { reason: 'abuse' })).body).toMatchObject({ banned: true });
    expect((await otherApi('DELETE', `/users/${user.userId}/ban`)).body).toEqual({ userId: user.userId, banned: false });
    expect((await otherApi('PUT', `/users/${user.userId}/role`, { role: 'admin' })).body).toMatchObject({ changed: true });
    expect((await otherApi('PUT', `/users/${user.userId}/role`, { role: 'user' })).body).toMatchObject({ changed: true });
    expect((await otherApi('DELETE', `/users/${user.userId}/data`, { reason: 'ticket 7' })).status).toBe(202);
  });

  it("an erased admin's id leaves auth-svc: banned_by and the actorId of other users' security events get a pseudonym", async () => {
    const former = await makeAdmin(s);
    const formerApi = adminApi(s, former.token);
    const user = await registerVerified(s);
    await waitForRow(s, user.userId);
    await waitForRow(s, former.userId);
    expect((await formerApi('POST', `/users/${user.userId}/ban`, { reason: 'abuse' })).status).toBe(200);
    expect((await formerApi('POST', `/users/${user.userId}/sessions/revoke`)).status).toBe(200);
    expect((await formerApi('POST', `/users/${user.userId}/unlock`)).status).toBe(200);
    expect((await formerApi('PUT', `/users/${user.userId}/role`, { role: 'admin' })).status).toBe(200);
    expect((await formerApi('PUT', `/users/${user.userId}/role`, { role: 'user' })).status).toBe(200);
    const acted = await s.sql.query(`select 1 from auth.security_events where context->>'actorId' = $1`, [former.userId]);
    expect(acted.rowCount).toBe(5);

    const erased = await api<{ requestId: string }>('DELETE', `/users/${former.userId}/data`, { reason: 'left the company' });
    expect(erased.status).toBe(202);
    const done = await s.waitForEvent(
      'user.erasure.completed.v1',
      (e) => e.type === 'user.erasure.completed.v1' && e.data.requestId === erased.body.requestId && e.data.service === 'auth',
    );
    expect(done.type === 'user.erasure.completed.v1' && done.data.pseudonymized).toMatchObject({ userBans: 1, securityEvents: 5 });
    const ban = await s.sql.query<{ banned_by: string }>('select banned_by from auth.user_bans where user_id = $1', [user.userId]);
    expect(ban.rows[0]?.banned_by).toMatch(/^erased:[0-9a-f-]{36}$/);
    const events = await s.sql.query<{ actor: string }>(
      `select context->>'actorId' as actor from auth.security_events where user_id = $1 and context ? 'actorId'`,
      [user.userId],
    );
    expect(events.rows.map((r) => r.actor)).toEqual(Array(5).fill(ban.rows[0]?.banned_by));
    // Nothing in auth-svc's schema names the erased admin any more.
    expect((await scanForIdentifiers(s.sql, [former.userId])).filter((h) => h.table.startsWith('auth.'))).toEqual([]);
  });
});
