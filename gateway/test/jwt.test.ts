import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT, exportSPKI, generateKeyPair, importJWK, type CryptoKey } from 'jose';
import type { ServiceHandle } from '@mana/shared';
import { startTestIssuer, type TestIssuer } from '@mana/shared/testing';
import { cleanup, json, newContext, startStub, startTestGateway, type Stub, type TestContext } from './helpers';

let issuer: TestIssuer;
let ctx: TestContext;
let gw: ServiceHandle;
let gdpr: Stub;

beforeAll(async () => {
  issuer = await startTestIssuer();
  ctx = newContext(issuer);
  gdpr = await startStub('gdpr');
  gw = await startTestGateway(ctx, { GDPR_SVC_URL: gdpr.url });
});

afterAll(async () => {
  await gw?.close();
  await gdpr?.close();
  await issuer?.close();
  if (ctx) await cleanup(ctx);
});

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const claims = () => ({ sub: 'user-1', email: 'user@example.com', role: 'user', sid: 'session-1' });

/** A token signed with the issuer's real key but with claims chosen by the test. */
function signed(build: (jwt: SignJWT) => SignJWT): Promise<string> {
  return build(new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', kid: issuer.kid }).setIssuedAt()).sign(issuer.privateKey);
}

async function call(token: string | undefined, headerValue?: string): Promise<{ status: number; error: unknown }> {
  const before = gdpr.requests.length;
  const res = await fetch(`${gw.url}/api/v1/me/data`, {
    headers: headerValue !== undefined ? { authorization: headerValue } : token ? { authorization: `Bearer ${token}` } : {},
  });
  const body = await json(res);
  if (res.status !== 200) expect(gdpr.requests.length, 'a refused request must not reach the service').toBe(before);
  return { status: res.status, error: body.error };
}

describe('bearer JWT verification', () => {
  it('lets a valid EdDSA token through', async () => {
    expect(await call(await issuer.sign())).toEqual({ status: 200, error: undefined });
  });

  it('refuses a missing token or a non-bearer scheme with TOKEN_MISSING', async () => {
    expect(await call(undefined)).toEqual({ status: 401, error: 'TOKEN_MISSING' });
    expect(await call(undefined, `Basic ${Buffer.from('a:b').toString('base64')}`)).toEqual({ status: 401, error: 'TOKEN_MISSING' });
  });

  it('refuses an expired token with TOKEN_EXPIRED', async () => {
    const token = await signed((j) =>
      j
        .setIssuer(issuer.issuer)
        .setAudience(issuer.audience)
        .setIssuedAt(now() - 120)
        .setExpirationTime(now() - 60),
    );
    expect(await call(token)).toEqual({ status: 401, error: 'TOKEN_EXPIRED' });
  });

  const invalid: Array<[string, () => Promise<string>]> = [
    [
      'alg: none',
      async () =>
        `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...claims(), iss: issuer.issuer, aud: issuer.audience, iat: now(), exp: now() + 600 })}.`,
    ],
    [
      'HS256 signed with the public key as the secret',
      async () => {
        const pem = await exportSPKI((await importJWK(issuer.publicJwk, 'EdDSA', { extractable: true })) as CryptoKey);
        const jwk = new TextEncoder().encode(JSON.stringify(issuer.publicJwk));
        const token = (secret: Uint8Array) =>
          new SignJWT(claims())
            .setProtectedHeader({ alg: 'HS256', kid: issuer.kid })
            .setIssuedAt()
            .setIssuer(issuer.issuer)
            .setAudience(issuer.audience)
            .setExpirationTime('10m')
            .sign(secret);
        // Both forms an attacker might try (PEM and the JWK text) are refused; returns the PEM one.
        expect(await call(await token(jwk))).toEqual({ status: 401, error: 'TOKEN_INVALID' });
        return token(new TextEncoder().encode(pem));
      },
    ],
    ['an unknown kid', () => issuer.sign({}, { kid: 'no-such-key' })],
    ['a wrong issuer', () => signed((j) => j.setIssuer('https://evil.example.com').setAudience(issuer.audience).setExpirationTime('10m'))],
    ['a wrong audience', () => signed((j) => j.setIssuer(issuer.issuer).setAudience('another-app').setExpirationTime('10m'))],
    ['no exp claim', () => signed((j) => j.setIssuer(issuer.issuer).setAudience(issuer.audience))],
    [
      'a tampered payload',
      async () => {
        const [h, p, s] = (await issuer.sign()).split('.');
        const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
        return `${h}.${b64url({ ...payload, role: 'admin' })}.${s}`;
      },
    ],
    [
      'another Ed25519 key (same kid)',
      async () => {
        const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
        return new SignJWT(claims())
          .setProtectedHeader({ alg: 'EdDSA', kid: issuer.kid })
          .setIssuedAt()
          .setIssuer(issuer.issuer)
          .setAudience(issuer.audience)
          .setExpirationTime('10m')
          .sign(other.privateKey);
      },
    ],
    [
      'a token missing its sid',
      () =>
        new SignJWT({ sub: 'user-1', email: 'user@example.com', role: 'user' })
          .setProtectedHeader({ alg: 'EdDSA', kid: issuer.kid })
          .setIssuedAt()
          .setIssuer(issuer.issuer)
          .setAudience(issuer.audience)
          .setExpirationTime('10m')
          .sign(issuer.privateKey),
    ],
    ['garbage', async () => 'not.a.jwt'],
  ];

  it.each(invalid)('refuses %s with TOKEN_INVALID', async (_what, make) => {
    expect(await call(await make())).toEqual({ status: 401, error: 'TOKEN_INVALID' });
  });

  it('does not let the verified-token cache serve a token past its exp', async () => {
    const token = await signed((j) =>
      j
        .setIssuer(issuer.issuer)
        .setAudience(issuer.audience)
        .setExpirationTime(now() + 60),
    );
    expect((await call(token)).status).toBe(200);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 120_000);
      expect(await call(token)).toEqual({ status: 401, error: 'TOKEN_EXPIRED' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('counts JWT failures by reason', async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toMatch(/gateway_jwt_failures_total\{reason="expired"\} [2-9]/);
    expect(text).toMatch(/gateway_jwt_failures_total\{reason="invalid"\} (1[0-9]|[2-9][0-9])/);
  });
});
