import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSignature, symmetricDecrypt } from 'better-auth/crypto';
import { AppError, createDatabase, createLogger, runMigrations, type Database } from '@mana/shared';
import { createTestDatabase, type TestDatabase } from '@mana/shared/testing';
import { createAuth, type Auth } from '../src/auth/auth';
import {
  authCookieName,
  authSecret,
  betterAuthError,
  callEndpoint,
  cookiePair,
  cookieValue,
  currentSigningKey,
  providerQuerySigned,
  sealJwkPrivateKey,
  sessionOfCookie,
  sessionTokenOf,
  signJwtWithKey,
  signedSessionCookie,
  toV1Error,
} from '../src/auth/better-auth-adapter';
import { loadServiceConfig } from '../src/config';
import * as tables from '../src/db/schema';

/**
 * The one place that knows Better Auth's internals, against a real Better Auth on a real PostgreSQL:
 * if an upgrade changes its cookie format, secret handling, error type or handler, this fails first.
 */
describe('better-auth adapter', () => {
  let testDb: TestDatabase;
  let database: Database<typeof tables>;
  let auth: Auth;
  const BASE_URL = 'http://127.0.0.1:3001';
  const email = `adapter-${randomBytes(4).toString('hex')}@example.com`;
  const password = `Tangerine ${randomBytes(6).toString('hex')} Orbit`;
  let sessionToken: string;

  beforeAll(async () => {
    testDb = await createTestDatabase('mana_adapter');
    const config = loadServiceConfig({ DATABASE_URL: testDb.url, BASE_URL, REQUIRE_EMAIL_VERIFICATION: 'false', LOG_LEVEL: 'silent' });
    const logger = createLogger('adapter-test', 'silent');
    database = createDatabase({ url: testDb.url, schema: tables, logger, max: 2 });
    await runMigrations(database.pool, { folder: fileURLToPath(new URL('../drizzle', import.meta.url)), schema: 'auth', logger });
    auth = createAuth({
      config,
      db: database.db,
      mailer: { send: async () => undefined, close: () => undefined },
      logger,
      onOutboxWrite: () => undefined,
    });
    await auth.api.signUpEmail({ body: { email, password, name: 'Adapter' } });
    sessionToken = (await auth.api.signInEmail({ body: { email, password } })).token;
  }, 60_000);

  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });

  it('forges the signed session cookie Better Auth accepts; a tampered one is refused', async () => {
    const cookie = await signedSessionCookie(auth, sessionToken);
    const found = await sessionOfCookie(auth, cookie);
    expect(found?.user.email).toBe(email);
    expect(found?.session.token).toBe(sessionToken);
    const [name = '', value = ''] = cookie.split('=');
    expect(await sessionOfCookie(auth, `${name}=${value.slice(0, -4)}AAA%3D`)).toBeNull();
    expect(await sessionOfCookie(auth, undefined)).toBeNull();
  });

  it('calls an endpoint through the handler and reads the new session token from its Set-Cookie', async () => {
    const ok = await callEndpoint(auth, BASE_URL, '/sign-in/email', { email, password }, new Headers({ 'user-agent': 'adapter-test' }));
    expect(ok.status).toBe(200);
    expect(typeof ok.body.token).toBe('string');
    expect(await sessionTokenOf(auth, ok.setCookies)).toBe(ok.body.token);
    const row = await database.pool.query<{ user_agent: string | null }>('select user_agent from auth.session where token = $1', [
      ok.body.token,
    ]);
    expect(row.rows[0]?.user_agent).toBe('adapter-test');

    const wrong = await callEndpoint(auth, BASE_URL, '/sign-in/email', { email, password: 'Not The Password 42' }, new Headers());
    expect([wrong.status, wrong.body.code]).toEqual([401, 'INVALID_EMAIL_OR_PASSWORD']);
    expect(await sessionTokenOf(auth, wrong.setCookies)).toBeUndefined();
  });

  it('reads Better Auth API errors and translates them for /api/v1 (5xx detail stays private)', async () => {
    const err: unknown = await auth.api.signInEmail({ body: { email, password: 'Not The Password 42' } }).catch((e: unknown) => e);
    expect(betterAuthError(err)).toMatchObject({ status: 401, code: 'INVALID_EMAIL_OR_PASSWORD' });
    expect(toV1Error(err)).toMatchObject({ code: 'INVALID_EMAIL_OR_PASSWORD', status: 401, expose: true });
    expect(betterAuthError(new Error('plain'))).toBeUndefined();
    expect(toV1Error(new Error('plain'))).toMatchObject({ code: 'INTERNAL_ERROR', status: 500, expose: false });
    const own = new AppError('OWN', 409, 'kept');
    expect(toV1Error(own)).toBe(own);
  });

  it('names its plugin cookies and parses Set-Cookie lines, skipping cleared cookies', async () => {
    const twoFactor = await authCookieName(auth, 'two_factor');
    const trust = await authCookieName(auth, 'trust_device');
    expect(twoFactor).toMatch(/two_factor$/);
    expect(trust).toMatch(/trust_device$/);
    const lines = [`${twoFactor}=abc.def; Path=/; HttpOnly; Max-Age=600`, `${trust}=; Path=/; Max-Age=0`, 'other=1'];
    expect(cookiePair(lines, twoFactor)).toBe(`${twoFactor}=abc.def`);
    expect(cookieValue(lines, twoFactor)).toBe('abc.def');
    expect(cookiePair(lines, trust)).toBeUndefined();
    expect(cookieValue([`${trust}=x; Max-Age=0`], trust)).toBeUndefined();
  });

  it("checks the provider's query signature the way the provider makes it", async () => {
    const secret = await authSecret(auth);
    const params = new URLSearchParams({ response_type: 'code', client_id: 'synapse', scope: 'openid email', exp: '99' });
    const canonical = new URLSearchParams([...params.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
    params.set('sig', await makeSignature(canonical.toString(), secret));
    expect(await providerQuerySigned(params.toString(), secret)).toBe(true);
    const tampered = new URLSearchParams(params);
    tampered.set('client_id', 'evil');
    expect(await providerQuerySigned(tampered.toString(), secret)).toBe(false);
    const twice = new URLSearchParams(params);
    twice.append('sig', 'x');
    expect(await providerQuerySigned(twice.toString(), secret)).toBe(false);
    expect(await providerQuerySigned(params.toString(), 'another-secret-another-secret-000000')).toBe(false);
  });

  it('seals a signing key the way the jwt plugin stores it', async () => {
    const jwk = { kty: 'OKP', crv: 'Ed25519', d: randomBytes(32).toString('base64url') };
    const sealed = await sealJwkPrivateKey(auth, jwk);
    const c = await auth.$context;
    expect(JSON.parse(await symmetricDecrypt({ key: c.secretConfig, data: JSON.parse(sealed) }))).toEqual(jwk);
  });

  it("resolves the jwt plugin's current key once and signs with it like its signJWT endpoint", async () => {
    const key = await currentSigningKey(auth);
    const jwks = createLocalJWKSet(await auth.api.getJwks());
    const payload = { sub: 'u1', email, role: 'user', sid: 's1', iat: Math.floor(Date.now() / 1000) };
    const mine = await signJwtWithKey(auth, key, payload);
    const theirs = (await auth.api.signJWT({ body: { payload } })).token;
    expect(decodeProtectedHeader(mine)).toEqual(decodeProtectedHeader(theirs));
    expect(decodeProtectedHeader(mine)).toMatchObject({ alg: 'EdDSA', kid: key.kid });
    const verified = await jwtVerify(mine, jwks, { issuer: BASE_URL, audience: 'mana' });
    expect(verified.payload).toEqual(decodeJwt(theirs));
    // A rotation: the plugin signs with the newest live key, and so does the next resolution.
    const [row] = await database.db.select().from(tables.jwks).where(eq(tables.jwks.id, key.kid));
    if (!row) throw new Error('signing key row expected');
    await database.db.insert(tables.jwks).values({ ...row, id: 'rotated-key', createdAt: new Date(Date.now() + 1000) });
    expect((await currentSigningKey(auth)).kid).toBe('rotated-key');
    expect(decodeProtectedHeader((await auth.api.signJWT({ body: { payload } })).token).kid).toBe('rotated-key');
  });
});
