import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRows, startVaultStack, VAULT, type VaultStack } from '../../vault-svc/test/harness';

const b64 = (n: number) => randomBytes(n).toString('base64');
const old = () => new Date(Date.now() - 10 * 60_000);

// The sessions' authentication times come from the harness's stand-in for auth-svc's internal API
// (tokens here are a test issuer's); test/e2e/auth-reauth.test.ts runs the same check against real sessions.
describe('vault-svc: step-up authentication on the routes that replace or drop a wrap of the key', () => {
  let s: VaultStack;
  beforeAll(async () => {
    s = await startVaultStack();
  });
  afterAll(async () => {
    await s?.close();
  });

  const sensitive = [
    { method: 'POST', path: '/rotate', action: 'rotate', body: undefined },
    { method: 'POST', path: '/recovery-wrap', action: 'recovery_set', body: { recoveryWrappedMk: b64(48), recoveryIv: b64(12) } },
    { method: 'DELETE', path: '/recovery-wrap', action: 'recovery_cleared', body: undefined },
    { method: 'POST', path: '/zero-knowledge', action: 'zk_enabled', body: { enable: true } },
    { method: 'POST', path: '/zero-knowledge', action: 'zk_disabled', body: { enable: false, masterKey: b64(32) } },
  ] as const;

  it('answers 401 REAUTH_REQUIRED (audited) when the session authenticated too long ago; reads and init do not ask', async () => {
    const user = 'user-stale';
    const token = await s.token(user);
    expect((await s.call(`${VAULT}/init`, { method: 'POST', token })).status).toBe(200);
    s.authTime.set(`sid-${user}`, { userId: user, authenticatedAt: old() });
    for (const r of sensitive) {
      const res = await s.call(`${VAULT}${r.path}`, { method: r.method, token, body: r.body });
      expect([r.path, res.status, res.body.error]).toEqual([r.path, 401, 'REAUTH_REQUIRED']);
    }
    const rows = await auditRows(s.admin, user);
    expect(rows.filter((a) => a.status === 401).map((a) => [a.action, a.context.error])).toEqual(
      sensitive.map((r) => [r.action, 'REAUTH_REQUIRED']),
    );
    expect((await s.call(`${VAULT}/key`, { token })).status).toBe(200);
    expect((await s.call(`${VAULT}/status`, { token })).status).toBe(200);
    // Authenticated again just now: the same call passes.
    s.authTime.set(`sid-${user}`, { userId: user, authenticatedAt: new Date() });
    expect((await s.call(`${VAULT}/rotate`, { method: 'POST', token })).status).toBe(200);
  });

  it('refuses a session auth-svc does not know (or of another user) as TOKEN_REVOKED', async () => {
    const token = await s.issuer.sign({ sub: 'user-ghost', sid: 'ended-session' });
    expect(await s.call(`${VAULT}/rotate`, { method: 'POST', token })).toMatchObject({ status: 401, body: { error: 'TOKEN_REVOKED' } });
    s.authTime.set('borrowed-session', { userId: 'someone-else', authenticatedAt: new Date() });
    const borrowed = await s.issuer.sign({ sub: 'user-borrower', sid: 'borrowed-session' });
    expect(await s.call(`${VAULT}/rotate`, { method: 'POST', token: borrowed })).toMatchObject({
      status: 401,
      body: { error: 'TOKEN_REVOKED' },
    });
  });

  it('answers 503 SERVICE_UNAVAILABLE when auth-svc cannot be asked, and changes nothing', async () => {
    const user = 'user-outage';
    const token = await s.token(user);
    const before = await s.call(`${VAULT}/init`, { method: 'POST', token });
    const env = s.vaultEnv;
    await s.restartVault({ ...env, AUTH_SVC_URL: 'http://127.0.0.1:9' });
    try {
      expect(await s.call(`${VAULT}/rotate`, { method: 'POST', token })).toMatchObject({
        status: 503,
        body: { error: 'SERVICE_UNAVAILABLE' },
      });
      expect((await s.call(`${VAULT}/key`, { token })).body.masterKey).toBe(before.body.masterKey);
    } finally {
      await s.restartVault(env);
    }
  });
});
