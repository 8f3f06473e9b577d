import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, eventually, testPool, type TestDatabase } from '@mana/shared/testing';
import { call } from '../helpers/http';
import { startStack, STACK_SERVICE_KEY, type Stack } from '../helpers/stack';
import { login, registerVerified } from '../helpers/users';

interface Summary {
  userId: string;
  generatedAt: string;
  sections: Record<string, Record<string, unknown> | null>;
  sources: Record<string, string>;
}
interface ExportDoc {
  exportedAt: string;
  userId: string;
  format: string;
  sections: Record<string, Record<string, unknown> | null>;
}

/** The data summary and the export through the gateway, every service running, plus a small sync database. */
describe('gdpr-svc: GET /api/v1/me/data and /me/data/export', () => {
  let s: Stack;
  let sync: TestDatabase;
  let syncSql: pg.Pool;

  beforeAll(async () => {
    sync = await createTestDatabase('mana_sync');
    syncSql = testPool(sync.url, 1);
    await syncSql.query('create table sync_changes (id serial primary key, app_id text not null, user_id text not null)');
    s = await startStack({
      services: ['vault', 'credits', 'admin', 'gdpr'],
      serviceEnv: { gdpr: { SYNC_DATABASE_URL: sync.url, GDPR_EXPORTS_PER_HOUR: '3', REAUTH_MAX_AGE_SECONDS: '4' } },
    });
  });
  afterAll(async () => {
    await s?.close();
    await syncSql?.end();
    await sync?.drop();
  });

  async function member() {
    const { userId, email, password } = await registerVerified(s);
    const { accessToken } = await login(s, email, password);
    return { userId, email, password, token: accessToken };
  }

  it('gathers every source: auth, vault, credits, admin and per-app counts from the sync database', async () => {
    const u = await member();
    expect((await call(`${s.gatewayUrl}/api/v1/me/encryption-vault/init`, { method: 'POST', token: u.token })).status).toBe(200);
    await syncSql.query(
      "insert into sync_changes (app_id, user_id) values ('notes', $1), ('notes', $1), ('todo', $1), ('todo', 'someone-else')",
      [u.userId],
    );

    const res = await call<Summary>(`${s.gatewayUrl}/api/v1/me/data`, { token: u.token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      userId: u.userId,
      generatedAt: expect.any(String),
      sources: { auth: 'ok', vault: 'ok', credits: 'ok', admin: 'ok', projects: 'ok' },
    });
    const { auth, vault, credits, admin, projects } = res.body.sections;
    expect(auth).toMatchObject({ user: { id: u.userId, email: u.email }, twoFactorEnabled: false, securityEventCount: expect.any(Number) });
    expect(auth?.sessions).toEqual(expect.arrayContaining([expect.objectContaining({})]));
    // The summary counts the security events; the records themselves are for the export.
    expect(auth?.securityEventCount).toBeGreaterThan(0);
    expect(auth).not.toHaveProperty('securityEvents');
    expect(vault).toMatchObject({ vaultExists: true, zeroKnowledge: false, hasRecoveryWrap: false, auditEntries: expect.any(Number) });
    expect(credits).toMatchObject({ balance: expect.anything(), transactionCount: expect.any(Number) });
    expect(admin).toMatchObject({ tier: expect.any(String), banned: false });
    expect(projects).toEqual({ apps: { notes: 2, todo: 1 }, total: 3 });
    // Never a secret or key material.
    expect(JSON.stringify(res.body)).not.toMatch(/masterKey|wrappedMk|"password"|privateKey|"token"/i);
  });

  it('a source that is down is "unavailable" with a null section, and the answer is still 200', async () => {
    const u = await member();
    await s.stopService('vault');
    try {
      const res = await call<Summary>(`${s.gatewayUrl}/api/v1/me/data`, { token: u.token });
      expect(res.status).toBe(200);
      expect(res.body.sources).toMatchObject({ auth: 'ok', vault: 'unavailable', credits: 'ok', admin: 'ok' });
      expect(res.body.sections.vault).toBeNull();
      expect(res.body.sections.auth).toMatchObject({ user: { id: u.userId } });
    } finally {
      await s.startService('vault');
    }
  });

  it('admin-svc reads the same summary through the internal route (service key only)', async () => {
    const u = await member();
    const res = await call<Summary>(`${s.gatewayUrl}/api/v1/internal/gdpr/users/${u.userId}/data`, {
      headers: { 'x-service-key': STACK_SERVICE_KEY },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      userId: u.userId,
      sources: { auth: 'ok', vault: 'ok' },
      sections: { auth: { user: { email: u.email } } },
    });
    const wrongKey = await call(`${s.gatewayUrl}/api/v1/internal/gdpr/users/${u.userId}/data`, {
      headers: { 'x-service-key': 'x'.repeat(40) },
    });
    expect(wrongKey.status).toBe(403);
    expect(wrongKey.body).toMatchObject({ error: 'SERVICE_KEY_INVALID' });
  });

  it('exports the full records as a JSON attachment, limited per hour (429 EXPORT_RATE_LIMITED with Retry-After)', async () => {
    const u = await member();
    const res = await call<ExportDoc>(`${s.gatewayUrl}/api/v1/me/data/export`, { token: u.token });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const date = res.body.exportedAt.slice(0, 10);
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="mana-data-${u.userId}-${date}.json"`);
    expect(res.body).toMatchObject({ userId: u.userId, format: 'mana-export/1', exportedAt: expect.any(String) });
    expect(Object.keys(res.body.sections).sort()).toEqual(['admin', 'auth', 'credits', 'gdpr', 'projects', 'vault']);
    expect(res.body.sections.credits).toMatchObject({ transactions: expect.any(Array) });
    // auth's full security-event records (the summary only counts them), each as the audit log holds it.
    const auth = res.body.sections.auth as { securityEventCount: number; securityEvents: Array<Record<string, unknown>> };
    expect(auth.securityEvents).toHaveLength(auth.securityEventCount);
    expect(auth.securityEvents).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: expect.any(String),
          type: 'sign_in_success',
          context: expect.any(Object),
          createdAt: expect.any(String),
        }),
      ]),
    );
    for (const e of auth.securityEvents)
      expect(Object.keys(e).sort()).toEqual(['context', 'createdAt', 'id', 'ipAddress', 'type', 'userAgent']);
    expect(res.body.sections.gdpr).toEqual({ exports: [{ exportedAt: expect.any(String) }], erasureRequests: [] });
    expect(JSON.stringify(res.body)).not.toMatch(/masterKey|wrappedMk|privateKey/i);

    for (let i = 0; i < 2; i++) expect((await call(`${s.gatewayUrl}/api/v1/me/data/export`, { token: u.token })).status).toBe(200);
    const limited = await call(`${s.gatewayUrl}/api/v1/me/data/export`, { token: u.token });
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ error: 'EXPORT_RATE_LIMITED' });
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    // The limit counts per person, in the database: someone else still gets theirs.
    const other = await member();
    expect((await call(`${s.gatewayUrl}/api/v1/me/data/export`, { token: other.token })).status).toBe(200);
  });

  it('needs a bearer token', async () => {
    const res = await call(`${s.gatewayUrl}/api/v1/me/data`);
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: 'TOKEN_MISSING' });
  });

  it('erasure needs a recent authentication: 401 REAUTH_REQUIRED until POST /api/v1/auth/reauth', async () => {
    const u = await member();
    const del = (body: unknown) => call(`${s.gatewayUrl}/api/v1/me/data`, { method: 'DELETE', token: u.token, body });
    // Without the confirmation word nothing is erased, so the step-up can be probed safely.
    const stale = await eventually(
      async () => {
        const res = await del({});
        return res.status === 401 ? res : undefined;
      },
      15_000,
      250,
    );
    expect(stale.body).toMatchObject({ error: 'REAUTH_REQUIRED' });
    const reauth = await call(`${s.gatewayUrl}/api/v1/auth/reauth`, { token: u.token, body: { password: u.password } });
    expect(reauth.status).toBe(200);
    const fresh = await del({});
    expect(fresh.status).toBe(400);
    expect(fresh.body).toMatchObject({ error: 'CONFIRMATION_REQUIRED' });
  });
});
