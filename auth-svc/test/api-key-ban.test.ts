import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@mana/shared';
import { eventually, lockWaiters as lockWaitersOf, uniqueName } from '@mana/shared/testing';
import { createApiKey } from '../src/domain/api-keys';
import { banUser } from '../src/domain/bans';
import { startTestAuthService, type TestAuthService } from './helpers/service';

/**
 * A banned user gets no API key, like no session (drizzle/0015): a ban that commits while a key is being created
 * (the request's session was live when it started) refuses it, and a user banned already is refused; a user erased
 * meanwhile gets the answer of an ended session. The interleavings are forced with an uncommitted row of a second
 * connection and read from pg_stat_activity, no sleeps.
 */
describe('auth-svc: creating an API key while banned', () => {
  let svc: TestAuthService['svc'];
  let sql: TestAuthService['sql'];
  let database: TestAuthService['database'];
  let stop: TestAuthService['stop'] | undefined;
  const password = 'Api Key Ban Passphrase 5';
  const headers = { 'content-type': 'application/json', 'user-agent': 'api-key-ban/1.0' };
  const post = (path: string, body: Record<string, unknown>, token?: string) =>
    fetch(`${svc.url}${path}`, {
      method: 'POST',
      headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  const meta = { ipAddress: null, userAgent: null };

  beforeAll(async () => {
    ({ svc, sql, database, stop } = await startTestAuthService('keyban'));
  });

  afterAll(async () => {
    await stop?.();
  });

  const signedIn = async () => {
    const email = `${uniqueName('keyban')}@example.com`;
    const registered = await post('/api/v1/auth/register', { email, password });
    expect(registered.status).toBe(201);
    const { user } = (await registered.json()) as { user: { id: string } };
    const login = await post('/api/v1/auth/login', { email, password });
    expect(login.status).toBe(200);
    const { accessToken } = (await login.json()) as { accessToken: string };
    return { userId: user.id, token: accessToken };
  };
  const keysOf = async (userId: string) => (await sql.query('select id from auth.api_keys where user_id = $1', [userId])).rowCount;
  const lockWaiters = (pattern: string) => lockWaitersOf(sql, pattern);

  it('a ban that commits while the key is being created refuses it (403 ACCOUNT_BANNED) and leaves no key', async () => {
    const { userId, token } = await signedIn();
    const holder = await sql.connect();
    let banning: ReturnType<typeof banUser> | undefined;
    let creating: Promise<Response> | undefined;
    try {
      // A second connection's lock on the session row holds the real banUser after it locked the user row and
      // wrote the ban, before it deletes the user's sessions and keys.
      await holder.query('begin');
      await holder.query('select id from auth.session where user_id = $1 for update', [userId]);
      banning = banUser(database.db, userId, { reason: 'abuse', expiresAt: null, actorId: null });
      await eventually(async () => (await lockWaiters('delete from %session%')) > 0);
      // The session is still live: the creation passes its checks and waits for the user row the ban holds.
      const create = post('/api/v1/auth/api-keys', { name: 'during the ban' }, token);
      creating = create;
      // (On the old code the key's insert waits there too, for its foreign key check.)
      await eventually(
        async () => (await lockWaiters('%')) > 1 || (await Promise.race([create, Promise.resolve('pending')])) !== 'pending',
      );
      await holder.query('rollback');
    } finally {
      await holder.query('rollback').catch(() => {});
      holder.release();
    }
    expect(await banning).toMatchObject({ kind: 'banned', sessionsEnded: 1 });
    const refused = await creating;
    expect(refused?.status).toBe(403);
    expect(await refused?.json()).toMatchObject({ error: 'ACCOUNT_BANNED' });
    expect(await keysOf(userId)).toBe(0);
  });

  it('a banned user is refused a key (403 ACCOUNT_BANNED)', async () => {
    const { userId } = await signedIn();
    await banUser(database.db, userId, { reason: 'abuse', expiresAt: null, actorId: null });
    const refused = createApiKey(database.db, userId, { name: 'banned', scopes: ['credits:read'] }, meta);
    await expect(refused).rejects.toBeInstanceOf(AppError);
    await expect(refused).rejects.toMatchObject({ code: 'ACCOUNT_BANNED', status: 403 });
    expect(await keysOf(userId)).toBe(0);
  });

  it('a user erased while the key is being created gets 401 TOKEN_REVOKED (not a foreign-key 500) and no key', async () => {
    const { userId } = await signedIn();
    const eraser = await sql.connect();
    try {
      // An erasure's DELETE of the user row, uncommitted: the creation's FOR SHARE waits for it.
      await eraser.query('begin');
      await eraser.query('delete from auth.user where id = $1', [userId]);
      const creating = createApiKey(database.db, userId, { name: 'during the erasure', scopes: ['credits:read'] }, meta);
      creating.catch(() => undefined);
      await eventually(async () => (await lockWaiters('%for share%')) > 0);
      await eraser.query('commit');
      await expect(creating).rejects.toMatchObject({ code: 'TOKEN_REVOKED', status: 401 });
    } finally {
      await eraser.query('rollback').catch(() => {});
      eraser.release();
    }
    expect(await keysOf(userId)).toBe(0);
  });
});
