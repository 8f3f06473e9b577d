import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified } from '../helpers/users';
import { adminApi, directoryRow, eventAt, internalApi, makeAdmin, newUserId, waitForRow } from './admin-helpers';

type Listed = {
  id: string;
  email: string;
  name: string;
  role: string;
  tier: string;
  emailVerified: boolean;
  banned: boolean;
  createdAt: string;
};

describe('admin-svc: directory, search, tiers, resync, erasure', () => {
  let s: Stack;
  let api: ReturnType<typeof adminApi>;
  let admin: Awaited<ReturnType<typeof makeAdmin>>;
  let userToken: string;
  let userId: string;
  const tag = randomBytes(3).toString('hex');
  /** Synthetic directory users (published as auth-svc would), oldest first. */
  const people: { id: string; email: string; name: string; at: Date }[] = [];

  beforeAll(async () => {
    s = await startStack({ services: ['admin'] });
    admin = await makeAdmin(s);
    api = adminApi(s, admin.token);
    const user = await registerVerified(s);
    userId = user.userId;
    userToken = (await login(s, user.email, user.password)).accessToken;
    const names = ['Ada Lovelace', 'Alan Turing', 'Grace Hopper', 'Edsger Dijkstra', 'Barbara Liskov', 'Donald Knuth', 'Ada Yonath'];
    const base = Date.parse('2026-01-01T00:00:00Z');
    names.forEach((name, i) => {
      const first = name.split(' ')[0]?.toLowerCase() ?? 'x';
      people.push({
        id: newUserId(),
        email: `${first}.${i}-${tag}@dir.example`,
        name: `${name} ${tag}`,
        at: new Date(base + i * 86_400_000),
      });
    });
    await s.publish(...people.map((p) => eventAt('user.registered.v1', { userId: p.id, email: p.email, name: p.name }, p.at)));
    await eventually(
      async () =>
        (
          await s.sql.query<{ n: number }>(`select count(*)::int as n from admin.directory_users where email like $1`, [
            `%-${tag}@dir.example`,
          ])
        ).rows[0]?.n === people.length,
    );
  });
  afterAll(async () => {
    await s?.close();
  });

  it('refuses a non-admin on every route, at the gateway and at admin-svc itself (403)', async () => {
    const id = people[0]?.id ?? '';
    const routes: [string, string, unknown?][] = [
      ['GET', '/users'],
      ['GET', `/users/${id}`],
      ['GET', `/users/${id}/data`],
      ['DELETE', `/users/${id}/data`, { reason: 'x' }],
      ['GET', `/users/${id}/tier`],
      ['PUT', `/users/${id}/tier`, { tier: 'beta' }],
      ['POST', `/users/${id}/ban`, { reason: 'x' }],
      ['DELETE', `/users/${id}/ban`],
      ['POST', `/users/${id}/sessions/revoke`],
      ['PUT', `/users/${id}/role`, { role: 'admin' }],
      ['POST', `/users/${id}/unlock`],
      ['GET', '/audit'],
    ];
    const direct = s.services.admin?.url ?? '';
    for (const [method, path, body] of routes) {
      const viaGateway = await adminApi(s, userToken)(method, path, body);
      expect(viaGateway.status, `${method} ${path}`).toBe(403);
      const reached = await call(`${direct}/api/v1/admin${path}`, { method, body, token: userToken });
      expect(reached.status, `direct ${method} ${path}`).toBe(403);
      expect(reached.body).toMatchObject({ error: 'FORBIDDEN' });
      expect((await call(`${direct}/api/v1/admin${path}`, { method, body })).status).toBe(401);
    }
  });

  it('is fed by user.registered.v1 and user.updated.v1: the admin appears with role admin, new users get the first tier', async () => {
    const row = await waitForRow(s, admin.userId, (r) => r.role === 'admin' && r.email_verified === true);
    expect(row).toMatchObject({ email: admin.email, tier: 'public', email_verified: true });
    const p = people[0];
    const detail = await directoryRow(s, p?.id ?? '');
    expect(detail).toMatchObject({ email: p?.email, name: p?.name, tier: 'public', role: 'user' });
    expect((detail?.created_at as Date).toISOString()).toBe(p?.at.toISOString());
  });

  it('ignores duplicates and late older updates; an update before its registration creates the row', async () => {
    const id = newUserId();
    const t = (m: number) => new Date(Date.parse('2026-03-01T00:00:00Z') + m * 60_000);
    const newer = eventAt('user.updated.v1', { userId: id, changes: { name: 'Newest Name', role: 'admin' } }, t(10));
    // Out of order: the update arrives before the registration.
    await s.publish(newer);
    await waitForRow(s, id, (r) => r.name === 'Newest Name');
    await s.publish(eventAt('user.registered.v1', { userId: id, email: `late-${tag}@dir.example`, name: 'Registered Name' }, t(0)));
    await waitForRow(s, id, (r) => r.email === `late-${tag}@dir.example`);
    // A late, older update and a duplicate of the newer one change nothing.
    const older = eventAt('user.updated.v1', { userId: id, changes: { name: 'Older Name', email: `old-${tag}@dir.example` } }, t(5));
    await s.publish(older, newer, older);
    const marker = eventAt('user.updated.v1', { userId: id, changes: { emailVerified: true } }, t(20));
    await s.publish(marker);
    const row = await waitForRow(s, id, (r) => r.email_verified === true);
    expect(row).toMatchObject({ name: 'Newest Name', role: 'admin', email: `old-${tag}@dir.example` });
    expect((row.created_at as Date).toISOString()).toBe(t(0).toISOString());
    // The email of the older update was newer than the registration's, so it is the one kept.
    const processed = await s.sql.query<{ n: number }>(`select count(*)::int as n from admin.processed_messages where message_id = $1`, [
      older.id,
    ]);
    expect(processed.rows[0]?.n).toBe(1);
  });

  it('searches email and name, case-insensitive, by prefix and substring; filters combine; sorts', async () => {
    const ids = (r: { body: { users: Listed[] } }) => r.body.users.map((u) => u.id);
    const prefix = await api<{ users: Listed[]; total: number }>('GET', `/users?search=ADA.`);
    expect(prefix.status).toBe(200);
    expect(prefix.body.users.filter((u) => u.email.endsWith(`-${tag}@dir.example`)).map((u) => u.name)).toEqual(
      expect.arrayContaining([`Ada Lovelace ${tag}`, `Ada Yonath ${tag}`]),
    );
    const substring = await api<{ users: Listed[]; total: number; page: number; limit: number }>(
      'GET',
      `/users?search=${encodeURIComponent(`uring ${tag}`)}`,
    );
    expect(substring.body).toMatchObject({ total: 1, page: 1, limit: 20 });
    expect(substring.body.users[0]).toMatchObject({
      name: `Alan Turing ${tag}`,
      tier: 'public',
      banned: false,
      emailVerified: false,
      role: 'user',
    });
    expect(Object.keys(substring.body.users[0] ?? {}).sort()).toEqual([
      'banned',
      'createdAt',
      'email',
      'emailVerified',
      'id',
      'name',
      'role',
      'tier',
    ]);
    // LIKE wildcards are literal.
    expect((await api<{ total: number }>('GET', `/users?search=${encodeURIComponent('%_')}`)).body.total).toBe(0);

    const range = `createdFrom=2026-01-02T00:00:00Z&createdTo=2026-01-05T00:00:00Z`;
    const filtered = await api<{ users: Listed[]; total: number }>('GET', `/users?search=${tag}&${range}&sort=name`);
    expect(filtered.body.users.map((u) => u.name)).toEqual([
      `Alan Turing ${tag}`,
      `Barbara Liskov ${tag}`,
      `Edsger Dijkstra ${tag}`,
      `Grace Hopper ${tag}`,
    ]);
    const byEmailDesc = await api<{ users: Listed[] }>('GET', `/users?search=dir.example&sort=-email&limit=2&${range}`);
    expect(byEmailDesc.body.users.map((u) => u.email)).toEqual([`grace.2-${tag}@dir.example`, `edsger.3-${tag}@dir.example`]);
    // `false` is a filter value, not "no filter".
    // The tag also names the user of the out-of-order test (role admin, email verified).
    expect((await api<{ total: number }>('GET', `/users?search=${tag}`)).body.total).toBe(people.length + 1);
    expect(
      (await api<{ total: number }>('GET', `/users?search=${tag}&banned=false&emailVerified=false&role=user&tier=public`)).body.total,
    ).toBe(people.length);
    expect((await api<{ total: number }>('GET', `/users?search=${tag}&emailVerified=true&role=admin`)).body.total).toBe(1);
    expect((await api<{ total: number }>('GET', `/users?search=${tag}&banned=true`)).body.total).toBe(0);
    expect((await api<{ total: number }>('GET', `/users?search=${tag}&tier=beta`)).body.total).toBe(0);
    // Default sort: newest first; page mode.
    const page2 = await api<{ users: Listed[]; total: number; page: number }>('GET', `/users?search=dir.example&limit=3&page=2&${range}`);
    expect(page2.body).toMatchObject({ total: 4, page: 2 });
    expect(ids(page2)).toEqual([people[1]?.id]);
  });

  it('walks the whole directory with keyset cursors (no total; nextCursor null at the end)', async () => {
    const seen: string[] = [];
    let cursor = '';
    for (let i = 0; i < 20; i++) {
      const res = await api<{ users: Listed[]; nextCursor: string | null; total?: number }>(
        'GET',
        `/users?search=${tag}&sort=createdAt&limit=2&cursor=${encodeURIComponent(cursor)}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.total).toBeUndefined();
      seen.push(...res.body.users.map((u) => u.id));
      if (!res.body.nextCursor) break;
      cursor = res.body.nextCursor;
    }
    expect(seen.slice(0, people.length)).toEqual(people.map((p) => p.id));
    expect(new Set(seen).size).toBe(seen.length);
    const byName = await api<{ users: Listed[]; nextCursor: string }>('GET', `/users?search=${tag}&sort=-name&limit=3&cursor=`);
    const next = await api<{ users: Listed[] }>('GET', `/users?search=${tag}&sort=-name&limit=3&cursor=${byName.body.nextCursor}`);
    expect([...byName.body.users, ...next.body.users].map((u) => u.name.split(' ')[0])).toEqual([
      'Newest',
      'Grace',
      'Edsger',
      'Donald',
      'Barbara',
      'Alan',
    ]);
  });

  it('answers bad parameters with 400 naming them, and a forged cursor with INVALID_CURSOR', async () => {
    const bad = await api<{ error: string; details: { path: string }[]; requestId: string }>(
      'GET',
      '/users?limit=101&sort=age&banned=yes&createdFrom=yesterday&page=0',
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('VALIDATION_FAILED');
    expect(bad.body.requestId).toBeTruthy();
    expect(bad.body.details.map((d) => d.path).sort()).toEqual(['banned', 'createdFrom', 'limit', 'page', 'sort']);
    const both = await api<{ details: { path: string }[] }>('GET', '/users?page=2&cursor=');
    expect(both.status).toBe(400);
    expect(both.body.details.map((d) => d.path)).toEqual(['page']);
    const forged = await api('GET', `/users?cursor=${Buffer.from('{"a":1}').toString('base64url')}`);
    expect(forged).toMatchObject({ status: 400, body: { error: 'INVALID_CURSOR' } });
    expect((await api('GET', `/users/${newUserId()}`)).body).toMatchObject({ error: 'USER_NOT_FOUND' });
    expect((await api('GET', '/audit?cursor=abc')).status).toBe(400);
  });

  it('refuses control characters (PostgreSQL refuses 0x00) in ids, search, cursor, tier and reasons with 400 naming the field', async () => {
    const refused = async (method: string, path: string, body?: unknown, via: typeof api = api) => {
      const res = await via<{ error: string; details: { path: string }[] }>(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(res.body.error).toBe('VALIDATION_FAILED');
      return res.body.details.map((d) => d.path);
    };
    expect(await refused('GET', '/users?search=ada%00')).toEqual(['search']);
    expect(await refused('GET', '/users?cursor=ab%00c')).toEqual(['cursor']);
    expect(await refused('GET', '/users?tier=beta%01')).toEqual(['tier']);
    // The gateway already refuses a %00 in the path (BAD_PATH); admin-svc reached directly refuses it itself.
    expect((await api('GET', `/users/${userId}%00`)).status).toBe(400);
    const direct = <T>(method: string, path: string, body?: unknown) =>
      call<T>(`${s.services.admin?.url}/api/v1/admin${path}`, { method, body, token: admin.token });
    const directInternal = <T>(method: string, path: string, body?: unknown) =>
      call<T>(`${s.services.admin?.url}/api/v1/internal${path}`, {
        method,
        body,
        headers: { 'x-service-key': s.env.MANA_SERVICE_KEY ?? '' },
      });
    expect(await refused('GET', `/users/${userId}%00`, undefined, direct)).toEqual(['id']);
    expect(await refused('GET', '/users/u%00x/data', undefined, direct)).toEqual(['id']);
    expect(await refused('GET', '/users/u%1Fx/tier', undefined, direct)).toEqual(['id']);
    expect(await refused('PUT', `/users/${userId}%00/tier`, { tier: 'beta' }, direct)).toEqual(['id']);
    expect(await refused('POST', `/users/${userId}%00/sessions/revoke`, undefined, direct)).toEqual(['id']);
    expect(await refused('GET', '/admin/users/u%00x/tier', undefined, directInternal)).toEqual(['id']);
    expect(await refused('PUT', `/users/${userId}/tier`, { tier: 'beta\u0000' })).toEqual(['tier']);
    expect(await refused('POST', `/users/${userId}/ban`, { reason: 'spam\u0000' })).toEqual(['reason']);
    expect(await refused('GET', '/audit?targetId=u%00x&actorId=u%7Fx')).toEqual(['targetId', 'actorId']);
    // Line breaks and tabs stay allowed in free text; nothing was banned above.
    expect((await api('PUT', `/users/${userId}/tier`, { tier: 'beta', reason: 'line one\n\tline two' })).status).toBe(200);
    expect(await directoryRow(s, userId)).toMatchObject({ banned: false });
  });

  it('changes tiers (user.tier.changed.v1 through the outbox, audited); others read the tier internally', async () => {
    const p = people[2];
    const id = p?.id ?? '';
    const changed = await api('PUT', `/users/${id}/tier`, { tier: 'beta', reason: 'early access' });
    expect(changed).toMatchObject({ status: 200, body: { userId: id, tier: 'beta' } });
    const event = await s.waitForEvent('user.tier.changed.v1', (e) => e.type === 'user.tier.changed.v1' && e.data.userId === id);
    expect(event.data).toEqual({ userId: id, tier: 'beta' });
    expect((await api('GET', `/users/${id}/tier`)).body).toEqual({ userId: id, tier: 'beta' });
    expect((await internalApi(s)('GET', `/admin/users/${id}/tier`)).body).toEqual({ userId: id, tier: 'beta' });
    expect((await internalApi(s)('GET', `/admin/users/${id}/data`)).body).toEqual({ userId: id, tier: 'beta', banned: false });
    expect((await call(`${s.gatewayUrl}/api/v1/internal/admin/users/${id}/tier`)).status).toBe(401);
    const unknown = await api('PUT', `/users/${id}/tier`, { tier: 'platinum' });
    expect(unknown).toMatchObject({ status: 400, body: { error: 'UNKNOWN_TIER' } });
    expect((await api('PUT', `/users/${newUserId()}/tier`, { tier: 'beta' })).body).toMatchObject({ error: 'USER_NOT_FOUND' });
    const audit = await api<{ entries: Record<string, unknown>[] }>('GET', `/audit?targetId=${id}`);
    expect(audit.body.entries).toHaveLength(1);
    expect(audit.body.entries[0]).toMatchObject({
      actorId: admin.userId,
      action: 'tier.set',
      targetId: id,
      reason: 'early access',
      changes: { from: 'public', to: 'beta' },
    });
    expect(audit.body.entries[0]?.requestId).toBeTruthy();
    expect((await api<{ total: number }>('GET', `/users?search=${tag}&tier=beta`)).body.total).toBe(1);
  });

  it('keeps the audit log append-only for the service role', async () => {
    const client = await s.sql.connect();
    try {
      await client.query('begin');
      await client.query('set local role admin_app');
      await expect(client.query(`update admin.audit_log set reason = 'edited'`)).rejects.toMatchObject({ code: '42501' });
      await client.query('rollback');
      await client.query('begin');
      await client.query('set local role admin_app');
      await expect(client.query('delete from admin.audit_log')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await client.query('rollback');
      client.release();
    }
  });

  it('resync repairs a directory that lost rows, changed rows and kept rows of users that are gone', async () => {
    const ghost = newUserId();
    await s.sql.query(`insert into admin.directory_users (id, email, tier, created_at) values ($1, 'ghost@dir.example', 'public', now())`, [
      ghost,
    ]);
    await s.sql.query(`delete from admin.directory_users where id = $1`, [admin.userId]);
    await s.sql.query(
      `update admin.directory_users set email_verified = true, name = 'Wrong' where email not like '%@dir.example' and id <> $1`,
      [admin.userId],
    );
    const synthetic =
      (await s.sql.query<{ n: number }>(`select count(*)::int as n from admin.directory_users where email like '%@dir.example'`)).rows[0]
        ?.n ?? 0;
    const res = await internalApi(s)<{ added: number; changed: number; removed: number; total: number }>('POST', '/admin/resync');
    expect(res.status).toBe(200);
    // auth-svc knows the admin and the plain user; every synthetic row (and the ghost) is gone.
    expect(res.body).toEqual({ added: 1, changed: 1, removed: synthetic, total: 2 });
    expect(await directoryRow(s, admin.userId)).toMatchObject({ role: 'admin', email: admin.email });
    // auth-svc's paged user list the resync walks (service key only).
    expect((await call(`${s.gatewayUrl}/api/v1/internal/users`)).status).toBe(401);
    const page = await internalApi(s)<{ users: { id: string; banned: boolean }[]; nextCursor: string }>('GET', '/users?limit=1');
    expect(page.body.users).toHaveLength(1);
    const rest = await internalApi(s)<{ users: { id: string }[]; nextCursor: string | null }>(
      'GET',
      `/users?limit=1&cursor=${page.body.nextCursor}`,
    );
    expect(rest.body.nextCursor).toBeNull();
    expect([page.body.users[0]?.id, rest.body.users[0]?.id].sort()).toEqual([admin.userId, userId].sort());
    const again = await internalApi(s)('POST', '/admin/resync');
    expect(again.body).toEqual({ added: 0, changed: 0, removed: 0, total: 2 });
    const audit = await api<{ entries: { changes: Record<string, unknown> }[] }>('GET', '/audit?action=directory.resync');
    expect(audit.body.entries[0]?.changes).toMatchObject({ added: 0, changed: 0, removed: 0 });
  });

  it('erasure: the row goes, audit entries keep a keyed pseudonym, a late event does not bring the user back', async () => {
    const id = newUserId();
    const email = `erase-${tag}@dir.example`;
    await s.publish(eventAt('user.registered.v1', { userId: id, email, name: 'To Erase' }, new Date()));
    await waitForRow(s, id);
    expect((await api('PUT', `/users/${id}/tier`, { tier: 'alpha' })).status).toBe(200);
    const requestId = randomUUID();
    await s.publish(eventAt('user.erasure.requested.v1', { requestId, userId: id }, new Date()));
    const done = await s.waitForEvent(
      'user.erasure.completed.v1',
      (e) => e.type === 'user.erasure.completed.v1' && e.data.requestId === requestId && e.data.service === 'admin',
    );
    expect(done.data).toMatchObject({ deleted: { directory_users: 1 }, pseudonymized: { audit_log: 1 } });
    expect(await directoryRow(s, id)).toBeUndefined();
    const rows = await s.sql.query<{ actor_id: string; target_id: string }>(
      `select actor_id, target_id from admin.audit_log where action = 'tier.set' and changes->>'to' = 'alpha'`,
    );
    expect(rows.rows[0]?.target_id).toMatch(/^erased:[0-9a-f]{32}$/);
    const dump =
      JSON.stringify((await s.sql.query(`select * from admin.audit_log`)).rows) +
      JSON.stringify((await s.sql.query(`select * from admin.erased_users`)).rows);
    expect(dump).not.toContain(id);
    // Late: an update published after the erasure is consumed and ignored.
    const late = eventAt('user.updated.v1', { userId: id, changes: { email } }, new Date());
    await s.publish(late);
    await eventually(
      async () => (await s.sql.query(`select 1 from admin.processed_messages where message_id = $1`, [late.id])).rowCount === 1,
    );
    expect(await directoryRow(s, id)).toBeUndefined();

    // An erased admin: their entries as actor keep the pseudonym and lose the IP address they came from.
    const asActor = await s.sql.query<{ n: number }>(
      `select count(*)::int as n from admin.audit_log where actor_id = $1 and ip_address is not null`,
      [admin.userId],
    );
    expect(asActor.rows[0]?.n).toBeGreaterThan(0);
    const adminRequest = randomUUID();
    await s.publish(eventAt('user.erasure.requested.v1', { requestId: adminRequest, userId: admin.userId }, new Date()));
    await s.waitForEvent(
      'user.erasure.completed.v1',
      (e) => e.type === 'user.erasure.completed.v1' && e.data.requestId === adminRequest && e.data.service === 'admin',
    );
    const after = JSON.stringify((await s.sql.query(`select * from admin.audit_log`)).rows);
    expect(after).not.toContain(admin.userId);
    const ips = await s.sql.query<{ n: number }>(
      `select count(*)::int as n from admin.audit_log where actor_id like 'erased:%' and ip_address is not null`,
    );
    expect(ips.rows[0]?.n).toBe(0);
  });
});
