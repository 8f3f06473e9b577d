import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { AppError, bearerToken, createJwtVerifier, type JwtVerifier } from '@mana/shared';
import { startTestIssuer, type TestIssuer } from '@mana/shared/testing';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('createJwtVerifier against a real JWKS endpoint', () => {
  let issuer: TestIssuer;
  let verifier: JwtVerifier;
  const claims = () => ({ sub: 'user-1', email: 'user@example.com', role: 'user', sid: 'session-1' });
  const signWith = (key: CryptoKey, build: (j: SignJWT) => SignJWT, kid = issuer.kid) =>
    build(new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', kid })).sign(key);

  beforeAll(async () => {
    issuer = await startTestIssuer();
    verifier = createJwtVerifier({ jwksUrl: issuer.jwksUrl, issuer: issuer.issuer, audience: issuer.audience });
  });
  afterAll(async () => {
    await issuer?.close();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('accepts a valid EdDSA token and returns its claims', async () => {
    const c = await verifier.verify(await issuer.sign({ role: 'admin' }));
    expect(c).toMatchObject({ sub: 'user-1', role: 'admin', sid: 'session-1', iss: issuer.issuer, aud: issuer.audience });
  });

  it('refuses alg none', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims(), iss: issuer.issuer, aud: issuer.audience, iat: now(), exp: now() + 600 })}.`;
    expect(await codeOf(verifier.verify(token))).toBe('TOKEN_INVALID');
  });

  it('refuses HS256 signed with the public key as the secret', async () => {
    for (const secret of [JSON.stringify(issuer.publicJwk), String(issuer.publicJwk.x)]) {
      const token = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'HS256', kid: issuer.kid })
        .setIssuedAt()
        .setIssuer(issuer.issuer)
        .setAudience(issuer.audience)
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(secret));
      expect(await codeOf(verifier.verify(token))).toBe('TOKEN_INVALID');
    }
  });

  it('refuses a wrong issuer, a wrong audience and a token without exp', async () => {
    const base = (j: SignJWT) => j.setIssuedAt().setExpirationTime('5m');
    const wrongIss = await signWith(issuer.privateKey, (j) => base(j).setIssuer('https://evil.example').setAudience(issuer.audience));
    const wrongAud = await signWith(issuer.privateKey, (j) => base(j).setIssuer(issuer.issuer).setAudience('other-app'));
    const noExp = await signWith(issuer.privateKey, (j) => j.setIssuedAt().setIssuer(issuer.issuer).setAudience(issuer.audience));
    for (const t of [wrongIss, wrongAud, noExp]) expect(await codeOf(verifier.verify(t))).toBe('TOKEN_INVALID');
  });

  it('says TOKEN_EXPIRED for an expired token', async () => {
    const token = await issuer.sign({}, { expiresIn: now() - 5 });
    expect(await codeOf(verifier.verify(token))).toBe('TOKEN_EXPIRED');
    expect(verifier.reasonOf(await verifier.verify(token).catch((e: unknown) => e))).toBe('expired');
  });

  it('refuses a tampered payload and a token signed by another Ed25519 key with the same kid', async () => {
    const [h, , s] = (await issuer.sign()).split('.');
    const tampered = `${h}.${b64({ ...claims(), role: 'admin', iss: issuer.issuer, aud: issuer.audience, iat: now(), exp: now() + 600 })}.${s}`;
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const forged = await signWith(other.privateKey, (j) =>
      j.setIssuedAt().setIssuer(issuer.issuer).setAudience(issuer.audience).setExpirationTime('5m'),
    );
    for (const t of [tampered, forged, 'not-a-jwt', 'a.b.c']) expect(await codeOf(verifier.verify(t))).toBe('TOKEN_INVALID');
  });

  it('refuses a token missing a required claim (sid)', async () => {
    const token = await new SignJWT({ sub: 'u', email: 'u@example.com', role: 'user' })
      .setProtectedHeader({ alg: 'EdDSA', kid: issuer.kid })
      .setIssuedAt()
      .setIssuer(issuer.issuer)
      .setAudience(issuer.audience)
      .setExpirationTime('5m')
      .sign(issuer.privateKey);
    expect(await codeOf(verifier.verify(token))).toBe('TOKEN_INVALID');
  });

  it('never serves a cached verification past the token exp', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    const token = await issuer.sign({}, { expiresIn: '2m' });
    const cached = createJwtVerifier({ jwksUrl: issuer.jwksUrl, issuer: issuer.issuer, audience: issuer.audience });
    expect((await cached.verify(token)).sub).toBe('user-1');
    vi.setSystemTime(t0 + 60_000);
    expect((await cached.verify(token)).sub).toBe('user-1');
    vi.setSystemTime(t0 + 121_000);
    expect(await codeOf(cached.verify(token))).toBe('TOKEN_EXPIRED');
  });

  it('drops expired tokens from its cache as new ones arrive, and stays within its bound', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    const v = createJwtVerifier({ jwksUrl: issuer.jwksUrl, issuer: issuer.issuer, audience: issuer.audience, cacheSize: 3 });
    for (let i = 0; i < 3; i++) await v.verify(await issuer.sign({ jti: `old-${i}`, sid: `s-old-${i}` }, { expiresIn: '1m' }));
    expect(v.cachedTokens?.()).toBe(3);
    vi.setSystemTime(t0 + 61_000);
    await v.verify(await issuer.sign({ jti: 'new-0', sid: 's-new-0' }, { expiresIn: '1m' }));
    expect(v.cachedTokens?.()).toBe(1);
    for (let i = 1; i < 5; i++) await v.verify(await issuer.sign({ jti: `new-${i}`, sid: `s-new-${i}` }, { expiresIn: '1m' }));
    expect(v.cachedTokens?.()).toBe(3);
  });

  it('keeps the newest token per session: a refresh replaces the token before it, an older one never evicts a newer', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    const v = createJwtVerifier({ jwksUrl: issuer.jwksUrl, issuer: issuer.issuer, audience: issuer.audience, cacheSize: 3 });
    const first = await issuer.sign({ jti: 'first', sid: 's-1' });
    const other = await issuer.sign({ jti: 'other', sid: 's-2' });
    await v.verify(first);
    await v.verify(other);
    expect(v.cachedTokens?.()).toBe(2);
    vi.setSystemTime(t0 + 5_000);
    const refreshed = await issuer.sign({ jti: 'refreshed', sid: 's-1' });
    expect((await v.verify(refreshed)).sid).toBe('s-1');
    expect(v.cachedTokens?.()).toBe(2);
    expect(v.peek?.(first)).toBeUndefined();
    expect(v.peek?.(refreshed)?.sid).toBe('s-1');
    expect(v.peek?.(other)?.sid).toBe('s-2');
    // The older token is valid until its exp (a second tab): verified again, then cached beside the newer one, so
    // the two alternating do not evict each other.
    expect((await v.verify(first)).sid).toBe('s-1');
    expect(v.peek?.(refreshed)?.sid).toBe('s-1');
    expect(v.peek?.(first)?.sid).toBe('s-1');
    // A full cache: the refresh of s-2 makes room by replacing s-2's own token, not by evicting another session's.
    vi.setSystemTime(t0 + 10_000);
    const otherRefreshed = await issuer.sign({ jti: 'other-refreshed', sid: 's-2' });
    await v.verify(otherRefreshed);
    expect(v.peek?.(other)).toBeUndefined();
    expect(v.peek?.(otherRefreshed)?.sid).toBe('s-2');
    expect(v.peek?.(refreshed)?.sid).toBe('s-1');
    expect(v.cachedTokens?.()).toBe(3);
  });

  it('answers 503 AUTH_UNAVAILABLE (not 401) when the key set cannot be fetched', async () => {
    const down = createJwtVerifier({ jwksUrl: 'http://127.0.0.1:1/jwks', issuer: issuer.issuer, audience: issuer.audience });
    const err = await down.verify(await issuer.sign()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('AUTH_UNAVAILABLE');
    expect((err as AppError).status).toBe(503);
  });

  it('extracts bearer tokens strictly', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

/** A JWKS endpoint whose keys change (rotation) and which counts its fetches. */
async function rotatingJwks() {
  const keys: JWK[] = [];
  let fetches = 0;
  let status = 200;
  const server: Server = createServer((_req, res) => {
    fetches += 1;
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(status === 200 ? { keys } : { error: 'boom' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  const addKey = async (kid: string) => {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    keys.push({ ...(await exportJWK(pair.publicKey)), kid, alg: 'EdDSA', use: 'sig' });
    return (exp = '10m') =>
      new SignJWT({ sub: 'u', email: 'u@example.com', role: 'user', sid: 's' })
        .setProtectedHeader({ alg: 'EdDSA', kid })
        .setIssuedAt()
        .setIssuer('iss')
        .setAudience('aud')
        .setExpirationTime(exp)
        .sign(pair.privateKey);
  };
  return {
    url,
    addKey,
    fetches: () => fetches,
    fail: (s: number) => void (status = s),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('JWKS refetch on an unknown kid', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('refetches for an unknown kid only after the cooldown, so random kids cannot hammer auth-svc', async () => {
    const jwks = await rotatingJwks();
    try {
      vi.useFakeTimers({ toFake: ['Date'] });
      const t0 = Date.now();
      const signA = await jwks.addKey('key-a');
      const v = createJwtVerifier({ jwksUrl: jwks.url, issuer: 'iss', audience: 'aud', cooldownMs: 30_000, cacheSize: 0 });
      expect((await v.verify(await signA())).sub).toBe('u');
      expect(jwks.fetches()).toBe(1);

      const signB = await jwks.addKey('key-b'); // auth-svc rotated its key
      const tokenB = await signB();
      expect(await codeOf(v.verify(tokenB))).toBe('TOKEN_INVALID');
      expect(jwks.fetches()).toBe(1); // within the cooldown: no refetch

      vi.setSystemTime(t0 + 31_000);
      expect((await v.verify(tokenB)).sub).toBe('u'); // unknown kid after the cooldown: one refetch
      expect(jwks.fetches()).toBe(2);

      const [h, p, s] = tokenB.split('.');
      const unknownKid = `${b64({ ...JSON.parse(Buffer.from(h, 'base64url').toString()), kid: 'nope' })}.${p}.${s}`;
      for (let i = 0; i < 5; i++) expect(await codeOf(v.verify(unknownKid))).toBe('TOKEN_INVALID');
      expect(jwks.fetches()).toBe(2);
      // keys already known keep working without fetching
      expect((await v.verify(await signA())).sub).toBe('u');
      expect(jwks.fetches()).toBe(2);
    } finally {
      await jwks.close();
    }
  });

  it('treats a JWKS endpoint answering 500 as unavailable, not as a bad token', async () => {
    const jwks = await rotatingJwks();
    try {
      const sign = await jwks.addKey('k');
      jwks.fail(500);
      const v = createJwtVerifier({ jwksUrl: jwks.url, issuer: 'iss', audience: 'aud' });
      expect(await codeOf(v.verify(await sign()))).toBe('AUTH_UNAVAILABLE');
      jwks.fail(200);
      expect((await v.verify(await sign())).sub).toBe('u');
    } finally {
      await jwks.close();
    }
  });
});
