import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  acceptedServiceKeys,
  createApp,
  createJwtVerifier,
  loadConfig,
  commonEnv,
  requireAuth,
  requireRole,
  requireServiceKey,
  secretsEqual,
  type ServiceHandle,
} from '@mana/shared';
import { startTestIssuer, type TestIssuer } from '@mana/shared/testing';
import { silent } from './helpers/bus';
import { serveApp } from './helpers/http';

const KEY = 'k'.repeat(48);
/** The next key during a rotation (MANA_SERVICE_KEYS_ACCEPTED). */
const NEXT = 'n'.repeat(48);

describe('auth middleware over real HTTP', () => {
  let svc: ServiceHandle;
  let issuer: TestIssuer;
  const revoked = new Set<string>();

  beforeAll(async () => {
    issuer = await startTestIssuer();
    const verifier = createJwtVerifier({ jwksUrl: issuer.jwksUrl, issuer: issuer.issuer, audience: issuer.audience });
    const { app, finish } = createApp({ logger: silent });
    const internal = express.Router();
    internal.use(requireServiceKey(KEY));
    internal.get('/ping', (_req, res) => void res.json({ ok: true }));
    app.use('/internal', internal);
    const rotating = express.Router();
    const cfg = loadConfig('test', commonEnv, { MANA_SERVICE_KEY: KEY, MANA_SERVICE_KEYS_ACCEPTED: ` ${NEXT} ,` });
    rotating.use(requireServiceKey(acceptedServiceKeys(cfg)));
    rotating.get('/ping', (_req, res) => void res.json({ ok: true }));
    app.use('/rotating', rotating);
    app.get('/me', requireAuth(verifier, { isRevoked: (sid) => revoked.has(sid) }), (req, res) => {
      res.json({ sub: req.auth?.sub, token: req.bearerToken === undefined ? 'missing' : 'kept' });
    });
    app.get('/admin', requireAuth(verifier), requireRole('admin'), (_req, res) => void res.json({ ok: true }));
    svc = await serveApp(finish());
  });
  afterAll(async () => {
    await svc?.close();
    await issuer?.close();
  });

  const call = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${svc.url}${path}`, { headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('X-Service-Key: missing → 401, wrong → 403, right → through', async () => {
    expect(await call('/internal/ping')).toMatchObject({ status: 401, body: { error: 'SERVICE_KEY_MISSING' } });
    for (const wrong of ['nope', `${KEY}x`, KEY.slice(1), 'K'.repeat(48)])
      expect(await call('/internal/ping', { 'x-service-key': wrong })).toMatchObject({
        status: 403,
        body: { error: 'SERVICE_KEY_INVALID' },
      });
    expect(await call('/internal/ping', { 'x-service-key': KEY })).toEqual({ status: 200, body: { ok: true } });
  });

  it('during a key rotation both the sent key and MANA_SERVICE_KEYS_ACCEPTED pass; nothing else does', async () => {
    for (const key of [KEY, NEXT])
      expect(await call('/rotating/ping', { 'x-service-key': key })).toEqual({ status: 200, body: { ok: true } });
    expect(await call('/internal/ping', { 'x-service-key': NEXT })).toMatchObject({ status: 403, body: { error: 'SERVICE_KEY_INVALID' } });
    for (const wrong of ['', 'n', `${NEXT},${KEY}`, 'N'.repeat(48)])
      expect((await call('/rotating/ping', { 'x-service-key': wrong })).status).toBeGreaterThanOrEqual(401);
    expect(() => loadConfig('test', commonEnv, { MANA_SERVICE_KEYS_ACCEPTED: 'short' })).toThrow(/MANA_SERVICE_KEYS_ACCEPTED/);
  });

  it('bearer JWT: missing, invalid, valid, revoked', async () => {
    expect(await call('/me')).toMatchObject({ status: 401, body: { error: 'TOKEN_MISSING' } });
    expect(await call('/me', { authorization: 'Basic dXNlcjpwYXNz' })).toMatchObject({ status: 401, body: { error: 'TOKEN_MISSING' } });
    expect(await call('/me', { authorization: 'Bearer abc.def.ghi' })).toMatchObject({ status: 401, body: { error: 'TOKEN_INVALID' } });
    const token = await issuer.sign({ sid: 'sess-9' });
    expect(await call('/me', { authorization: `Bearer ${token}` })).toEqual({ status: 200, body: { sub: 'user-1', token: 'kept' } });
    revoked.add('sess-9');
    expect(await call('/me', { authorization: `Bearer ${token}` })).toMatchObject({ status: 401, body: { error: 'TOKEN_REVOKED' } });
  });

  it('admin routes need role admin', async () => {
    const user = await issuer.sign({ role: 'user' });
    const admin = await issuer.sign({ role: 'admin' });
    expect(await call('/admin', { authorization: `Bearer ${user}` })).toMatchObject({ status: 403, body: { error: 'FORBIDDEN' } });
    expect(await call('/admin', { authorization: `Bearer ${admin}` })).toEqual({ status: 200, body: { ok: true } });
  });

  it('secretsEqual compares secrets of any length', () => {
    expect(secretsEqual('abc', 'abc')).toBe(true);
    expect(secretsEqual('abc', 'abcd')).toBe(false);
    expect(secretsEqual('', '')).toBe(true);
  });
});
