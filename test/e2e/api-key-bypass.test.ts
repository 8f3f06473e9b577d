import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified } from '../helpers/users';

interface Raw {
  status: number;
  body: string;
}

/**
 * Attempts to take a personal API key past its scopes through the real gateway: paths that are not in
 * canonical form (sent raw: fetch would normalise them), case, trailing slashes, method override headers,
 * HEAD, and the key on routes that take none. Each attempt must end at the gateway or get nothing.
 */
describe('personal API keys: no way around the scopes', () => {
  let s: Stack;
  let masterKey: string;
  let reader: string;
  let meReader: string;

  /** One request exactly as written (no URL normalisation). */
  const raw = (method: string, path: string, headers: Record<string, string>, body?: string) =>
    new Promise<Raw>((resolve, reject) => {
      const { hostname, port } = new URL(s.gatewayUrl);
      const req = request({ hostname, port, method, path, headers }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

  beforeAll(async () => {
    s = await startStack({ services: ['vault', 'credits', 'gdpr'], env: { REAUTH_MAX_AGE_SECONDS: '60' } });
    const user = await registerVerified(s);
    const { accessToken } = await login(s, user.email, user.password);
    const init = await call<{ masterKey: string }>(`${s.gatewayUrl}/api/v1/me/encryption-vault/init`, {
      method: 'POST',
      token: accessToken,
    });
    expect(init.status).toBe(200);
    masterKey = init.body.masterKey;
    const create = async (scopes: string[]) =>
      (
        await call<{ key: string }>(`${s.gatewayUrl}/api/v1/auth/api-keys`, {
          body: { name: scopes.join(' '), scopes },
          token: accessToken,
        })
      ).body.key;
    reader = await create(['credits:read']);
    meReader = await create(['me:read']);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('paths that are not canonical, or differ in case, never reach a route outside the scopes', async () => {
    const attempts: Array<[string, string]> = [
      [reader, '//api/v1/auth/sessions'],
      [reader, '/api/v1/credits//../auth/sessions'],
      [reader, '/api/v1/credits/%2e%2e/%2e%2e/auth/sessions'],
      [reader, '/api/v1/credits/..%2f..%2fauth/sessions'],
      [reader, '/api/v1/credits/%2E%2E%5C..%5Cauth/sessions'],
      [reader, '/api/v1/Auth/sessions'],
      [reader, '/API/v1/auth/sessions'],
      [reader, '/api/v1/auth/sessions/'],
      [reader, '/api/v1/credits/../me/encryption-vault/key'],
      [reader, '/api/v1/Me/encryption-vault/key'],
      [meReader, '/api/v1/me/Encryption-Vault/key'],
      [meReader, '/api/v1/me/encryption-vault/../encryption-vault/key'],
      [meReader, '/api/v1/me//encryption-vault/key'],
    ];
    for (const [key, path] of attempts)
      for (const headers of [{ 'x-api-key': key }, { authorization: `Bearer ${key}` }] as Array<Record<string, string>>) {
        const res = await raw('GET', path, headers);
        expect({ path, status: res.status }).toEqual({ path, status: expect.toSatisfy((n: number) => n >= 400 && n < 500) });
        expect(res.body).not.toContain(masterKey);
      }
    // The same key does read what its scope allows, so the refusals above are not a broken key.
    expect((await raw('GET', '/api/v1/credits/balance/', { 'x-api-key': reader })).status).toBe(200);
    expect((await raw('HEAD', '/api/v1/credits/balance', { 'x-api-key': reader })).status).toBe(200);
  });

  it('a user holds at most 50 keys (each key has its own rate limit): the 51st is 409 API_KEY_LIMIT', async () => {
    const user = await registerVerified(s);
    const { accessToken } = await login(s, user.email, user.password);
    // 49 keys straight into the table (creating them through the API would only take longer).
    await s.sql.query(
      `insert into auth.api_keys (user_id, name, prefix, key_hash)
       select $1, 'filler ' || i, 'mana_filler', encode(sha256(($1 || i)::bytea), 'hex') from generate_series(1, 49) i`,
      [user.userId],
    );
    const create = (name: string) => call(`${s.gatewayUrl}/api/v1/auth/api-keys`, { body: { name }, token: accessToken });
    expect((await create('fiftieth')).status).toBe(201);
    const refused = await create('fifty-first');
    expect({ status: refused.status, error: refused.body.error }).toEqual({ status: 409, error: 'API_KEY_LIMIT' });
    const count = await s.sql.query('select count(*)::int as n from auth.api_keys where user_id = $1', [user.userId]);
    expect(count.rows[0]).toEqual({ n: 50 });
  });

  it('a read scope cannot write through HEAD or a method override header', async () => {
    const overrides = ['x-http-method-override', 'x-http-method', 'x-method-override'];
    for (const name of overrides) {
      const body = JSON.stringify({ amount: 1, appId: 'bypass', description: 'x', idempotencyKey: `bypass-${name}` });
      const res = await raw(
        'GET',
        '/api/v1/credits/use',
        {
          'x-api-key': reader,
          [name]: 'POST',
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
        },
        body,
      );
      expect({ name, status: res.status }).not.toEqual({ name, status: 201 });
      expect(res.status).toBeGreaterThanOrEqual(400);
    }
    const rotate = await raw('HEAD', '/api/v1/me/encryption-vault/rotate', { 'x-api-key': meReader });
    expect(rotate.status).toBe(403);
    const spent = await s.sql.query(`select count(*)::int as n from credits.ledger_transactions where app_id = 'bypass'`);
    expect(spent.rows[0]).toEqual({ n: 0 });
  });
});
