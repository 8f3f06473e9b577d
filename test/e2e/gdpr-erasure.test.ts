import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '@mana/shared/testing';
import { scanForIdentifiers, scannedSchemas } from '../helpers/erasure-scan';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { login, registerVerified } from '../helpers/users';

interface Started {
  requestId: string;
  status: string;
  statusUrl: string;
}
interface ServiceView {
  status: string;
  completedAt: string | null;
  deleted: Record<string, number> | null;
  pseudonymized: Record<string, number> | null;
  retained: Record<string, number> | null;
}
interface StatusView {
  requestId: string;
  status: string;
  requestedAt: string;
  completedAt: string | null;
  missing: string[];
  services: Record<string, ServiceView>;
  receipt: string | null;
}
interface ReceiptServices {
  services: Record<string, { deleted: Record<string, number>; pseudonymized: Record<string, number>; retained: Record<string, number> }>;
}

const PARTICIPANTS = ['admin', 'auth', 'credits', 'vault'];

/** Erasure through the gateway with every service of the ecosystem taking part. */
describe('gdpr-svc: DELETE /api/v1/me/data erases everywhere and ends with a signed receipt', () => {
  let s: Stack;

  beforeAll(async () => {
    s = await startStack({ services: ['vault', 'credits', 'admin', 'gdpr'], serviceEnv: { gdpr: { ERASURE_RETRY_MS: '500' } } });
  });
  afterAll(async () => {
    await s?.close();
  });

  const completed = (statusUrl: string) =>
    eventually(async () => {
      const res = await call<StatusView>(statusUrl);
      return res.body.status === 'completed' ? res.body : undefined;
    }, 20_000);

  it('needs the confirmation word', async () => {
    const { email, password } = await registerVerified(s);
    const { accessToken } = await login(s, email, password);
    for (const body of [undefined, {}, { confirm: 'delete' }]) {
      const res = await call(`${s.gatewayUrl}/api/v1/me/data`, { method: 'DELETE', token: accessToken, body });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'CONFIRMATION_REQUIRED' });
    }
    const wrongType = await call(`${s.gatewayUrl}/api/v1/me/data`, { method: 'DELETE', token: accessToken, body: { confirm: 1 } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body).toMatchObject({ error: 'VALIDATION_FAILED', details: [{ path: 'confirm' }] });
  });

  it('erases the user in every service; the receipt verifies against the JWKS; no table keeps the id or the email', async () => {
    const { userId, email, password } = await registerVerified(s);
    const { accessToken } = await login(s, email, password);
    expect((await call(`${s.gatewayUrl}/api/v1/me/encryption-vault/init`, { method: 'POST', token: accessToken })).status).toBe(200);
    expect((await call(`${s.gatewayUrl}/api/v1/me/data/export`, { token: accessToken })).status).toBe(200);

    const res = await call<Started>(`${s.gatewayUrl}/api/v1/me/data`, {
      method: 'DELETE',
      token: accessToken,
      body: { confirm: 'DELETE' },
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      status: 'in_progress',
      statusUrl: `${s.gatewayUrl}/api/v1/gdpr/erasures/${res.body.requestId}?token=${new URL(res.body.statusUrl).searchParams.get('token')}`,
    });

    const done = await completed(res.body.statusUrl);
    expect(Object.keys(done.services).sort()).toEqual(PARTICIPANTS);
    for (const svc of Object.values(done.services)) expect(svc).toMatchObject({ status: 'completed', completedAt: expect.any(String) });
    expect(done.services.auth?.deleted).toMatchObject({ users: 1 });
    expect(done.services.vault?.deleted).toMatchObject({ encryption_vaults: 1 });
    expect(done).toMatchObject({
      requestId: res.body.requestId,
      missing: [],
      completedAt: expect.any(String),
      receipt: expect.any(String),
    });

    // The receipt: EdDSA, its own type, verifiable with the published keys; the subject is not the user id.
    const receipt = done.receipt ?? '';
    const jwks = createRemoteJWKSet(new URL(`${s.gatewayUrl}/api/v1/gdpr/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(receipt, jwks, { typ: 'erasure-receipt+jwt', algorithms: ['EdDSA'] });
    expect(protectedHeader).toMatchObject({ alg: 'EdDSA', typ: 'erasure-receipt+jwt' });
    expect(payload).toMatchObject({ requestId: res.body.requestId, requestedAt: done.requestedAt, completedAt: done.completedAt });
    expect(payload.sub).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(payload)).not.toContain(userId);
    const services = (payload as unknown as ReceiptServices).services;
    expect(Object.keys(services).sort()).toEqual(PARTICIPANTS);
    for (const [name, view] of Object.entries(done.services)) expect(services[name]?.retained).toEqual(view.retained);

    // Tampered: another payload under the same signature does not verify.
    const [header, body, signature] = receipt.split('.');
    const forged = Buffer.from(JSON.stringify({ ...payload, services: {} })).toString('base64url');
    expect(decodeProtectedHeader(receipt).kid).toBeDefined();
    await expect(jwtVerify(`${header}.${forged}.${signature}`, jwks)).rejects.toThrow();
    await expect(jwtVerify(`${header}.${body}.${signature?.slice(0, -4)}AAAA`, jwks)).rejects.toThrow();

    // Sessions ended with the account.
    await eventually(async () => (await call(`${s.gatewayUrl}/api/v1/me/data`, { token: accessToken })).status === 401);

    // Every table of every schema: nothing holds the id or the email, except pseudonymized rows the receipt lists as retained.
    expect(await scannedSchemas(s.sql)).toEqual(expect.arrayContaining(['admin', 'auth', 'credits', 'gdpr', 'vault']));
    const retainedTables = new Set(Object.values(services).flatMap((v) => Object.keys(v.retained)));
    const hits = await eventually(async () => {
      const found = await scanForIdentifiers(s.sql, [userId, email]);
      const unexplained = found.filter((h) => !retainedTables.has(h.table.split('.')[1] ?? ''));
      return unexplained.length === 0 ? found : undefined;
    }, 15_000).catch(async () => scanForIdentifiers(s.sql, [userId, email]));
    expect(hits.filter((h) => !retainedTables.has(h.table.split('.')[1] ?? ''))).toEqual([]);

    // The capability URL keeps working after the account is gone; a wrong token reads like an unknown id.
    expect((await call<StatusView>(res.body.statusUrl)).body.status).toBe('completed');
    const wrong = new URL(res.body.statusUrl);
    wrong.searchParams.set('token', 'x'.repeat(43));
    const refused = await call(wrong.toString());
    expect(refused.status).toBe(404);
    expect(refused.body).toMatchObject({ error: 'ERASURE_NOT_FOUND' });
    const badId = await call(`${s.gatewayUrl}/api/v1/gdpr/erasures/not-a-uuid?token=abc`);
    expect(badId.status).toBe(400);
    expect(badId.body).toMatchObject({ error: 'VALIDATION_FAILED', details: [{ path: 'requestId' }] });
  });

  it('a participant that is down during the request completes after it restarts', async () => {
    const { email, password } = await registerVerified(s);
    const { accessToken } = await login(s, email, password);
    await s.stopService('vault');
    try {
      const res = await call<Started>(`${s.gatewayUrl}/api/v1/me/data`, {
        method: 'DELETE',
        token: accessToken,
        body: { confirm: 'DELETE' },
      });
      expect(res.status).toBe(202);
      const waiting = await eventually(async () => {
        const st = await call<StatusView>(res.body.statusUrl);
        return st.body.services.auth?.status === 'completed' && st.body.services.credits?.status === 'completed' ? st.body : undefined;
      }, 20_000);
      expect(waiting.status).not.toBe('completed');
      expect(waiting.missing).toContain('vault');
      expect(waiting.receipt).toBeNull();
      await s.startService('vault');
      const done = await completed(res.body.statusUrl);
      expect(done.services.vault).toMatchObject({ status: 'completed', deleted: { encryption_vaults: 0 } });
    } finally {
      if (!s.services.vault) await s.startService('vault');
    }
  });
});
