import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { scanForIdentifiers } from '../helpers/erasure-scan';
import { call, type JsonResponse } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified } from '../helpers/users';
import { makeAdmin } from './admin-helpers';

interface CreatedKey {
  id: string;
  key: string;
  name: string;
  prefix: string;
  scopes: string[];
  expiresAt: string | null;
  error?: string;
}
interface ListedKey {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
}

const KEY_SHAPE = /^mana_[A-Za-z0-9_-]{43}$/;

/** Personal API keys end to end: auth-svc issues them, the gateway exchanges them, the services see only JWTs. */
describe('personal API keys (/api/v1/auth/api-keys, the gateway exchange, scopes, revocation)', () => {
  let s: Stack;
  const url = (path: string) => `${s.gatewayUrl}${path}`;
  const create = (token: string, body: unknown) => call<CreatedKey>(url('/api/v1/auth/api-keys'), { body, token });
  const list = (token: string) => call<{ apiKeys: ListedKey[] }>(url('/api/v1/auth/api-keys'), { token });
  /** A request with the key as `Authorization: Bearer` (default) or `X-API-Key`. */
  const withKey = (key: string, path: string, opts: { method?: string; body?: unknown; header?: boolean; ip?: string } = {}) =>
    call(url(path), {
      method: opts.method,
      body: opts.body,
      headers: {
        ...(opts.header ? { 'x-api-key': key } : { authorization: `Bearer ${key}` }),
        ...(opts.ip ? { 'x-forwarded-for': opts.ip } : {}),
      },
    });
  const events = async (userId: string, type: string) =>
    (
      await s.sql.query<{ ip_address: string | null; context: Record<string, unknown> }>(
        'select ip_address, context from auth.security_events where user_id = $1 and type = $2 order by created_at',
        [userId, type],
      )
    ).rows;
  const signedIn = async () => {
    const user = await registerVerified(s);
    const { accessToken } = await login(s, user.email, user.password);
    return { ...user, token: accessToken };
  };
  const expectError = (res: JsonResponse<unknown>, status: number, code: string) => {
    expect({ status: res.status, error: (res.body as { error?: string }).error }).toEqual({ status, error: code });
  };

  beforeAll(async () => {
    s = await startStack({ services: ['vault', 'credits', 'admin', 'gdpr'], env: { REAUTH_MAX_AGE_SECONDS: '60' } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('creating a key needs a recent authentication; the key is shown once, stored hashed, never listed', async () => {
    const u = await signedIn();
    const res = await create(u.token, { name: 'backup script', expiresInDays: 30, scopes: ['credits:read', 'vault:read'] });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.any(String),
      key: expect.stringMatching(KEY_SHAPE),
      name: 'backup script',
      prefix: res.body.key.slice(0, 13),
      scopes: ['credits:read', 'vault:read'],
      expiresAt: expect.any(String),
    });
    const days = (Date.parse(res.body.expiresAt ?? '') - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);

    const stored = (await s.sql.query<{ key_hash: string }>('select key_hash from auth.api_keys where id = $1', [res.body.id])).rows[0];
    expect(stored?.key_hash).toBe(createHash('sha256').update(res.body.key).digest('hex'));

    const listed = await list(u.token);
    expect(listed.status).toBe(200);
    expect(listed.body.apiKeys).toEqual([
      {
        id: res.body.id,
        name: 'backup script',
        prefix: res.body.prefix,
        scopes: ['credits:read', 'vault:read'],
        createdAt: expect.any(String),
        lastUsedAt: null,
        expiresAt: res.body.expiresAt,
      },
    ]);
    expect(JSON.stringify(listed.body)).not.toContain(res.body.key.slice(13));

    // Without scopes: read-only; without expiry: none.
    const plain = await create(u.token, { name: 'reader' });
    expect(plain.body).toMatchObject({ scopes: ['me:read', 'credits:read'], expiresAt: null });
    expect(plain.body.key).not.toBe(res.body.key);
    expect(await events(u.userId, 'api_key_created')).toHaveLength(2);

    // An old sign-in must confirm the password first.
    const sid = (await s.sql.query<{ id: string }>('select id from auth.session where user_id = $1', [u.userId])).rows[0]?.id;
    await s.sql.query(`update auth.session set created_at = created_at - interval '10 minutes' where id = $1`, [sid]);
    expectError(await create(u.token, { name: 'late' }), 401, 'REAUTH_REQUIRED');
    expect((await call(url('/api/v1/auth/reauth'), { body: { password: u.password }, token: u.token })).status).toBe(200);
    expect((await create(u.token, { name: 'late' })).status).toBe(201);
  });

  it('refuses bad input, the admin scope for a non-admin, and callers without a token', async () => {
    const u = await signedIn();
    for (const body of [
      {},
      { name: '' },
      { name: 'x', scopes: ['everything'] },
      { name: 'x', scopes: [] },
      { name: 'x', expiresInDays: 0 },
    ]) {
      const res = await create(u.token, body);
      expectError(res, 400, 'VALIDATION_FAILED');
    }
    expect((await create(u.token, { name: 'x', scopes: ['bogus'] })).body).toMatchObject({ details: [{ path: 'scopes.0' }] });
    expectError(await create(u.token, { name: 'x', scopes: ['admin'] }), 403, 'FORBIDDEN');
    expectError(await call(url('/api/v1/auth/api-keys')), 401, 'TOKEN_MISSING');
    expect((await list(u.token)).body.apiKeys).toEqual([]);
  });

  it('a key reaches credits and vault within its scopes (Bearer or X-API-Key); anything else is 403 SCOPE_DENIED', async () => {
    const u = await signedIn();
    const init = await call<{ masterKey: string }>(url('/api/v1/me/encryption-vault/init'), { method: 'POST', token: u.token });
    expect(init.status).toBe(200);
    const { key, id } = (await create(u.token, { name: 'reader', scopes: ['credits:read', 'vault:read'] })).body;

    // The same wallet as the user's own token (the signup bonus may still be on its way: compare once settled).
    await eventually(async () => {
      const viaBearer = await withKey(key, '/api/v1/credits/balance');
      const own = await call(url('/api/v1/credits/balance'), { token: u.token });
      return viaBearer.status === 200 && JSON.stringify(viaBearer.body) === JSON.stringify(own.body) && own.status === 200;
    });
    const viaHeader = await withKey(key, '/api/v1/me/encryption-vault/key', { header: true });
    expect(viaHeader.status).toBe(200);
    expect(viaHeader.body).toMatchObject({ masterKey: init.body.masterKey });

    expectError(
      await withKey(key, '/api/v1/credits/use', { method: 'POST', body: { amount: 1, appId: 'test', description: 'x' } }),
      403,
      'SCOPE_DENIED',
    );
    expectError(await withKey(key, '/api/v1/me/data'), 403, 'SCOPE_DENIED');
    expectError(await withKey(key, '/api/v1/auth/sessions'), 403, 'SCOPE_DENIED');
    expectError(await withKey(key, '/api/v1/auth/api-keys', { method: 'POST', body: { name: 'child' } }), 403, 'SCOPE_DENIED');
    expectError(await withKey(key, '/api/v1/admin/users'), 403, 'SCOPE_DENIED');

    // A key never passes a step-up check: auth-svc knows no session ak_… (vault rotate with the full vault scope).
    const vaultWriter = (await create(u.token, { name: 'vault writer', scopes: ['vault'] })).body;
    expectError(await withKey(vaultWriter.key, '/api/v1/me/encryption-vault/rotate', { method: 'POST' }), 401, 'TOKEN_REVOKED');
    expect((await withKey(vaultWriter.key, '/api/v1/me/encryption-vault/key')).body).toMatchObject({ masterKey: init.body.masterKey });

    // A key with the write scope spends.
    const writer = (await create(u.token, { name: 'spender', scopes: ['credits'] })).body;
    const spend = { amount: 1, appId: 'api-key-test', description: 'spent with a key', idempotencyKey: `ak-${id}` };
    const spent = await eventually(async () => {
      const res = await withKey(writer.key, '/api/v1/credits/use', { method: 'POST', body: spend });
      return res.status === 402 ? undefined : res; // the signup bonus not granted yet
    });
    expect(spent.status).toBe(201);

    // Wrong keys: one of the right shape, a malformed one, the same in X-API-Key.
    const wrong = `mana_${randomBytes(32).toString('base64url')}`;
    expectError(await withKey(wrong, '/api/v1/credits/balance'), 401, 'TOKEN_INVALID');
    expectError(await withKey('mana_short', '/api/v1/credits/balance'), 401, 'TOKEN_INVALID');
    expectError(await withKey(wrong, '/api/v1/credits/balance', { header: true }), 401, 'TOKEN_INVALID');

    const listed = (await list(u.token)).body.apiKeys.find((k) => k.id === id);
    expect(listed?.lastUsedAt).toEqual(expect.any(String));
  });

  it('records the first use and every use from a new IP as a security event, once per IP', async () => {
    const u = await signedIn();
    const { key, id } = (await create(u.token, { name: 'roaming', scopes: ['credits:read'] })).body;
    for (const ip of ['203.0.113.7', '203.0.113.7', '198.51.100.9', '203.0.113.7', '198.51.100.9'])
      expect((await withKey(key, '/api/v1/credits/balance', { ip })).status).toBe(200);
    const used = await events(u.userId, 'api_key_used_new_ip');
    expect(used.map((e) => e.ip_address)).toEqual(['203.0.113.7', '198.51.100.9']);
    expect(used[0]?.context).toMatchObject({ keyId: id, name: 'roaming' });
    expect(JSON.stringify(used)).not.toContain(key.slice(13));
  });

  it('admin routes: only the key of an admin with the admin scope', async () => {
    const admin = await makeAdmin(s);
    const adminKey = (await create(admin.token, { name: 'ops', scopes: ['admin'] })).body;
    expect(adminKey.scopes).toEqual(['admin']);
    expect((await withKey(adminKey.key, '/api/v1/admin/users')).status).toBe(200);

    const unscoped = (await create(admin.token, { name: 'reader', scopes: ['credits:read'] })).body;
    expectError(await withKey(unscoped.key, '/api/v1/admin/users'), 403, 'SCOPE_DENIED');

    // Demoted before the next key's first use: its exchanged token carries role user.
    const later = (await create(admin.token, { name: 'later', scopes: ['admin', 'credits:read'] })).body;
    await s.sql.query(`update auth."user" set role = 'user' where id = $1`, [admin.userId]);
    expectError(await withKey(later.key, '/api/v1/admin/users'), 403, 'FORBIDDEN');
    expect((await withKey(later.key, '/api/v1/credits/balance')).status).toBe(200);
  });

  it('deleting a key refuses it everywhere within a second, even with its exchange cached', async () => {
    const u = await signedIn();
    const other = await signedIn();
    const { key, id } = (await create(u.token, { name: 'doomed', scopes: ['credits:read'] })).body;
    expect((await withKey(key, '/api/v1/credits/balance')).status).toBe(200); // exchanged and cached now

    expectError(await call(url(`/api/v1/auth/api-keys/${id}`), { method: 'DELETE', token: other.token }), 404, 'API_KEY_NOT_FOUND');
    expect((await withKey(key, '/api/v1/credits/balance')).status).toBe(200);

    const deleted = await call(url(`/api/v1/auth/api-keys/${id}`), { method: 'DELETE', token: u.token });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ success: true });
    await eventually(async () => (await withKey(key, '/api/v1/credits/balance')).status === 401, 1_000);
    await s.waitForEvent('session.revoked.v1', (e) => (e.data as { sessionId: string }).sessionId === `ak_${id}`);
    expectError(await withKey(key, '/api/v1/credits/balance'), 401, 'TOKEN_INVALID');
    expectError(await withKey(key, '/api/v1/me/encryption-vault/status', { header: true }), 401, 'TOKEN_INVALID');

    expectError(await call(url(`/api/v1/auth/api-keys/${id}`), { method: 'DELETE', token: u.token }), 404, 'API_KEY_NOT_FOUND');
    expectError(await call(url('/api/v1/auth/api-keys/not-a-uuid'), { method: 'DELETE', token: u.token }), 400, 'VALIDATION_FAILED');
    expect((await list(u.token)).body.apiKeys).toEqual([]);
    expect((await events(u.userId, 'api_key_deleted')).map((e) => e.context)).toEqual([
      { keyId: id, name: 'doomed', prefix: key.slice(0, 13) },
    ]);
  });

  it("a ban deletes the user's keys: refused within a second even with the exchange cached", async () => {
    const u = await signedIn();
    const { key } = (await create(u.token, { name: 'to be banned', scopes: ['credits:read'] })).body;
    expect((await withKey(key, '/api/v1/credits/balance')).status).toBe(200);
    const admin = await makeAdmin(s);
    const banned = await call(url(`/api/v1/admin/users/${u.userId}/ban`), { body: { reason: 'abuse' }, token: admin.token });
    expect(banned.status).toBe(200);
    await eventually(async () => (await withKey(key, '/api/v1/credits/balance')).status === 401, 1_000);
    expect((await s.sql.query('select 1 from auth.api_keys where user_id = $1', [u.userId])).rowCount).toBe(0);
  });

  it('an expired key is refused', async () => {
    const u = await signedIn();
    const { key, id } = (await create(u.token, { name: 'short-lived', expiresInDays: 1, scopes: ['credits:read'] })).body;
    await s.sql.query(`update auth.api_keys set expires_at = now() - interval '1 second' where id = $1`, [id]);
    expectError(await withKey(key, '/api/v1/credits/balance'), 401, 'TOKEN_INVALID');
  });

  it('keys appear in the GDPR view without their secret and die with the user', async () => {
    const u = await signedIn();
    const { key, id, prefix } = (await create(u.token, { name: 'exported', scopes: ['credits:read'] })).body;
    expect((await withKey(key, '/api/v1/credits/balance')).status).toBe(200);

    const view = await call<{ sections: { auth: { apiKeys: ListedKey[] } } }>(url('/api/v1/me/data'), { token: u.token });
    expect(view.status).toBe(200);
    expect(view.body.sections.auth.apiKeys).toEqual([
      {
        id,
        name: 'exported',
        prefix,
        scopes: ['credits:read'],
        createdAt: expect.any(String),
        lastUsedAt: expect.any(String),
        expiresAt: null,
      },
    ]);
    const digest = createHash('sha256').update(key).digest('hex');
    expect(JSON.stringify(view.body)).not.toContain(key.slice(13));
    expect(JSON.stringify(view.body)).not.toContain(digest);

    const erase = await call<{ statusUrl: string }>(url('/api/v1/me/data'), {
      method: 'DELETE',
      token: u.token,
      body: { confirm: 'DELETE' },
    });
    expect(erase.status).toBe(202);
    const done = await eventually(async () => {
      const res = await call<{ status: string; services: Record<string, { deleted: Record<string, number> | null }> }>(
        erase.body.statusUrl,
      );
      return res.body.status === 'completed' ? res.body : undefined;
    }, 20_000);
    expect(done.services.auth?.deleted).toMatchObject({ users: 1, apiKeys: 1 });
    expect((await s.sql.query('select 1 from auth.api_keys where user_id = $1', [u.userId])).rowCount).toBe(0);
    await eventually(async () => (await withKey(key, '/api/v1/credits/balance')).status === 401, 2_000);
    expect(await scanForIdentifiers(s.sql, [digest, key])).toEqual([]);
  });
});
