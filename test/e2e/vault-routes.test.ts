import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBus, createEvent, createLogger } from '@mana/shared';
import { eventually } from '@mana/shared/testing';
import { auditRows, SERVICE_KEY, startVaultStack, VAULT, type VaultStack } from '../../vault-svc/test/harness';

const b64 = (n: number) => randomBytes(n).toString('base64');
const recoveryWrap = () => ({ recoveryWrappedMk: b64(48), recoveryIv: b64(12) });
/** The master key's check value as a client computes it (issue 13): base64 HMAC-SHA256 of a fixed label under the MK. */
const keyCheck = (mk: string) => createHmac('sha256', Buffer.from(mk, 'base64')).update('mana-vault key-check v1').digest('base64');

describe('vault-svc routes through the gateway', () => {
  let s: VaultStack;
  beforeAll(async () => {
    s = await startVaultStack();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('refuses calls without a valid bearer token, at the gateway and at the service', async () => {
    expect((await s.call(`${VAULT}/status`)).status).toBe(401);
    expect((await s.call(`${VAULT}/key`, { token: 'not-a-jwt' })).status).toBe(401);
    // A subject in the pseudonym namespace of erased users is not a user.
    const reserved = await s.call(`${VAULT}/key`, { token: await s.token('erased:00000000-0000-0000-0000-000000000000') });
    expect([reserved.status, reserved.body.error]).toEqual([401, 'TOKEN_INVALID']);
    // Reached directly, vault-svc verifies the token again.
    const direct = await fetch(`${s.vault.url}${VAULT}/key`);
    expect(direct.status).toBe(401);
    expect(((await direct.json()) as { error: string }).error).toBe('TOKEN_MISSING');
  });

  it('reached directly, refuses the token of a revoked session as the gateway does', async () => {
    const token = await s.issuer.sign({ sub: 'user-revoked', sid: 'sid-to-revoke' });
    const other = await s.issuer.sign({ sub: 'user-revoked', sid: 'sid-still-live' });
    const direct = (t: string) => fetch(`${s.vault.url}${VAULT}/status`, { headers: { authorization: `Bearer ${t}` } });
    expect((await direct(token)).status).toBe(200);
    const publisher = createBus({ url: s.bus.AMQP_URL, exchange: s.bus.AMQP_EXCHANGE, logger: createLogger('test', 'silent') });
    await publisher.start();
    try {
      await publisher.publish(
        createEvent('session.revoked.v1', {
          sessionId: 'sid-to-revoke',
          userId: 'user-revoked',
          expiresAt: new Date(Date.now() + 15 * 60_000).toISOString(),
        }),
      );
    } finally {
      await publisher.close();
    }
    await eventually(async () => (await direct(token)).status === 401, 2_000);
    const refused = await direct(token);
    expect(((await refused.json()) as { error: string }).error).toBe('TOKEN_REVOKED');
    expect((await direct(other)).status).toBe(200);
  });

  it('walks the whole life of a vault, writing one audit row per action', async () => {
    const user = 'user-life';
    const token = await s.token(user);
    const ua = { 'user-agent': 'vault-e2e/1.0', 'x-forwarded-for': '203.0.113.7' };

    expect(await s.call(`${VAULT}/status`, { token })).toEqual({
      status: 200,
      body: { vaultExists: false, hasRecoveryWrap: false, zeroKnowledge: false, recoverySetAt: null },
    });
    const missing = await s.call(`${VAULT}/key`, { token, headers: ua });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: 'VAULT_NOT_FOUND', requestId: expect.any(String) });

    const init = await s.call(`${VAULT}/init`, { token, method: 'POST', headers: ua });
    expect(init.status).toBe(200);
    expect(init.body).toEqual({
      masterKey: expect.any(String),
      formatVersion: 1,
      kekId: 'kek-1',
      keyCheck: keyCheck(String(init.body.masterKey)),
    });
    const mk = String(init.body.masterKey);
    expect(Buffer.from(mk, 'base64')).toHaveLength(32);

    // Idempotent: the same key comes back.
    expect((await s.call(`${VAULT}/init`, { token, method: 'POST' })).body.masterKey).toBe(mk);
    const key = await s.call(`${VAULT}/key`, { token, headers: ua });
    expect(key).toEqual({ status: 200, body: { masterKey: mk, formatVersion: 1, kekId: 'kek-1', keyCheck: keyCheck(mk) } });

    // The database holds only the wrap, never the MK.
    const { rows } = await s.admin.query<{ wrapped_mk: Buffer }>('select wrapped_mk from vault.encryption_vaults where user_id = $1', [
      user,
    ]);
    expect(rows[0]?.wrapped_mk).toHaveLength(48);
    expect(rows[0]?.wrapped_mk.includes(Buffer.from(mk, 'base64'))).toBe(false);

    // Recovery wrap: set (idempotent replace), then clear.
    const wrap = recoveryWrap();
    const set = await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: { ...wrap, keyCheck: keyCheck(mk) } });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ hasRecoveryWrap: true, recoverySetAt: expect.any(String) });
    expect(
      (await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: { ...recoveryWrap(), keyCheck: keyCheck(mk) } })).status,
    ).toBe(200);
    const status = await s.call(`${VAULT}/status`, { token });
    expect(status.body).toMatchObject({ vaultExists: true, hasRecoveryWrap: true, zeroKnowledge: false });
    expect(typeof status.body.recoverySetAt).toBe('string');
    expect(await s.call(`${VAULT}/recovery-wrap`, { token, method: 'DELETE' })).toEqual({ status: 200, body: { hasRecoveryWrap: false } });

    // Rotation mints a new key; the old one is gone.
    const rotated = await s.call(`${VAULT}/rotate`, { token, method: 'POST' });
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ formatVersion: 1, kekId: 'kek-1', recoveryWrapCleared: false });
    expect(rotated.body.masterKey).not.toBe(mk);
    expect((await s.call(`${VAULT}/key`, { token })).body.masterKey).toBe(rotated.body.masterKey);

    const audit = await auditRows(s.admin, user);
    // The 404 fetch before /init left no row: a user without a vault is not audited (an erased user has none).
    expect(audit.map((r) => [r.action, r.status])).toEqual([
      ['init', 200],
      ['init', 200],
      ['fetch', 200],
      ['recovery_set', 200],
      ['recovery_set', 200],
      ['recovery_cleared', 200],
      ['rotate', 200],
      ['fetch', 200],
    ]);
    expect(audit[2]).toMatchObject({ ip: '203.0.113.7', user_agent: 'vault-e2e/1.0', context: { kekId: 'kek-1' } });
    expect(audit[0]?.context).toEqual({ created: true, kekId: 'kek-1' });
    expect(audit[1]?.context).toEqual({ created: false, kekId: 'kek-1' });
    expect(audit[4]?.context).toEqual({ replaced: true });
    // No audit row ever carries key material.
    expect(JSON.stringify(audit)).not.toContain(mk);
    expect(JSON.stringify(audit)).not.toContain(String(rotated.body.masterKey));
  });

  it('zero-knowledge mode: needs a recovery wrap, drops the server wrap, forbids rotate and clearing', async () => {
    const user = 'user-zk';
    const token = await s.token(user);
    const initial = await s.call(`${VAULT}/init`, { token, method: 'POST' });
    const mk = String(initial.body.masterKey);

    const noWrap = await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: true } });
    expect(noWrap.status).toBe(400);
    expect(noWrap.body.error).toBe('RECOVERY_WRAP_MISSING');

    const wrap = recoveryWrap();
    await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: { ...wrap, keyCheck: keyCheck(mk) } });
    expect(await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: true, keyCheck: keyCheck(mk) } })).toEqual({
      status: 200,
      body: { zeroKnowledge: true },
    });
    const { rows } = await s.admin.query('select wrapped_mk, wrap_iv, kek_id from vault.encryption_vaults where user_id = $1', [user]);
    expect(rows[0]).toEqual({ wrapped_mk: null, wrap_iv: null, kek_id: null });

    expect(await s.call(`${VAULT}/key`, { token })).toEqual({
      status: 200,
      body: { requiresRecoveryCode: true, recoveryWrappedMk: wrap.recoveryWrappedMk, recoveryIv: wrap.recoveryIv, keyCheck: keyCheck(mk) },
    });
    expect((await s.call(`${VAULT}/status`, { token })).body).toMatchObject({ zeroKnowledge: true, hasRecoveryWrap: true });
    // /init stays idempotent in ZK mode: no new key, the recovery wrap comes back.
    expect((await s.call(`${VAULT}/init`, { token, method: 'POST' })).body).toEqual({
      requiresRecoveryCode: true,
      recoveryWrappedMk: wrap.recoveryWrappedMk,
      recoveryIv: wrap.recoveryIv,
      keyCheck: keyCheck(mk),
    });

    const rotate = await s.call(`${VAULT}/rotate`, { token, method: 'POST' });
    expect(rotate.status).toBe(409);
    expect(rotate.body.error).toBe('ZK_ROTATE_FORBIDDEN');
    const clear = await s.call(`${VAULT}/recovery-wrap`, { token, method: 'DELETE' });
    expect(clear.status).toBe(409);
    expect(clear.body.error).toBe('ZK_ACTIVE');

    // Leaving ZK mode: the client hands back the MK it unwrapped with its recovery secret.
    const badKey = await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: false, masterKey: b64(16) } });
    expect(badKey.status).toBe(400);
    expect(badKey.body.error).toBe('VALIDATION_FAILED');
    expect(await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: false, masterKey: mk } })).toEqual({
      status: 200,
      body: { zeroKnowledge: false },
    });
    const key = await s.call(`${VAULT}/key`, { token });
    expect(key.body).toEqual({ masterKey: mk, formatVersion: 1, kekId: 'kek-1', keyCheck: keyCheck(mk) });

    // Outside ZK mode a client can never replace the server's key by "disabling" again.
    await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: false, masterKey: b64(32) } });
    expect((await s.call(`${VAULT}/key`, { token })).body.masterKey).toBe(mk);

    // A rotation clears a recovery wrap: it would recover the old key.
    const rotated = await s.call(`${VAULT}/rotate`, { token, method: 'POST' });
    expect(rotated.body.recoveryWrapCleared).toBe(true);
    expect((await s.call(`${VAULT}/status`, { token })).body.hasRecoveryWrap).toBe(false);

    const audit = await auditRows(s.admin, user);
    expect(audit.map((r) => [r.action, r.status, r.context.error ?? null])).toEqual([
      ['init', 200, null],
      ['zk_enabled', 400, 'RECOVERY_WRAP_MISSING'],
      ['recovery_set', 200, null],
      ['zk_enabled', 200, null],
      ['fetch', 200, null],
      ['init', 200, null],
      ['rotate', 409, 'ZK_ROTATE_FORBIDDEN'],
      ['recovery_cleared', 409, 'ZK_ACTIVE'],
      ['zk_disabled', 400, 'VALIDATION_FAILED'],
      ['zk_disabled', 200, null],
      ['fetch', 200, null],
      ['zk_disabled', 200, null],
      ['fetch', 200, null],
      ['rotate', 200, null],
    ]);
  });

  it('answers 404 VAULT_NOT_FOUND for every action on a missing vault, and audits none (no vault, no per-user row)', async () => {
    const user = 'user-none';
    const token = await s.token(user);
    const calls: [string, string, unknown?][] = [
      ['GET', '/key'],
      ['POST', '/rotate'],
      ['POST', '/recovery-wrap', recoveryWrap()],
      ['DELETE', '/recovery-wrap'],
      ['POST', '/zero-knowledge', { enable: true }],
    ];
    for (const [method, path, body] of calls) {
      const res = await s.call(`${VAULT}${path}`, { token, method, body });
      expect([path, res.status, res.body.error]).toEqual([path, 404, 'VAULT_NOT_FOUND']);
    }
    // An erased user has no vault either: a row here would name them again after their erasure.
    expect(await auditRows(s.admin, user)).toEqual([]);
    expect((await s.call(`${VAULT}/status`, { token })).body.vaultExists).toBe(false);
  });

  it('refuses malformed base64 and wrong lengths with VALIDATION_FAILED, changing nothing', async () => {
    const user = 'user-validate';
    const token = await s.token(user);
    await s.call(`${VAULT}/init`, { token, method: 'POST' });
    const bad: [unknown, string][] = [
      [{ recoveryWrappedMk: 'not base64!', recoveryIv: b64(12) }, 'recoveryWrappedMk'],
      [{ recoveryWrappedMk: b64(47), recoveryIv: b64(12) }, 'recoveryWrappedMk'],
      [{ recoveryWrappedMk: b64(48), recoveryIv: b64(16) }, 'recoveryIv'],
      [{ recoveryWrappedMk: `${'A'.repeat(63)}_`, recoveryIv: b64(12) }, 'recoveryWrappedMk'], // base64url is not accepted
      [{ recoveryWrappedMk: b64(48), recoveryIv: `${b64(12)} ` }, 'recoveryIv'],
      [{ recoveryIv: b64(12) }, 'recoveryWrappedMk'],
    ];
    for (const [body, field] of bad) {
      const res = await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('VALIDATION_FAILED');
      expect(res.body.details).toEqual([expect.objectContaining({ path: field })]);
    }
    const zk = await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: 'yes' } });
    expect([zk.status, zk.body.error]).toEqual([400, 'VALIDATION_FAILED']);
    const json = await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: '{"recoveryWrappedMk":' });
    expect(json.status).toBe(400);
    expect((await s.call(`${VAULT}/status`, { token })).body.hasRecoveryWrap).toBe(false);
    const audit = await auditRows(s.admin, user);
    // Unparseable JSON is refused by the body parser before any route runs, so it has no user and no row.
    expect(audit.filter((r) => r.status === 400).map((r) => r.action)).toEqual([...Array(bad.length).fill('recovery_set'), 'zk_enabled']);
  });

  it('concurrent first /init calls create exactly one vault and hand out one key', async () => {
    const user = 'user-race';
    const token = await s.token(user);
    const results = await Promise.all(Array.from({ length: 12 }, () => s.call(`${VAULT}/init`, { token, method: 'POST' })));
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(new Set(results.map((r) => r.body.masterKey)).size).toBe(1);
    const { rows } = await s.admin.query<{ n: number }>('select count(*)::int as n from vault.encryption_vaults where user_id = $1', [
      user,
    ]);
    expect(rows[0]?.n).toBe(1);
    const audit = await auditRows(s.admin, user);
    expect(audit.filter((r) => r.context.created === true)).toHaveLength(1);
    expect(audit).toHaveLength(12);
  });

  it('concurrent key fetches of several users each get their audit row before the key is answered', async () => {
    const users = ['user-burst-1', 'user-burst-2', 'user-burst-3'];
    const tokens = await Promise.all(users.map((u) => s.token(u)));
    for (const token of tokens) await s.call(`${VAULT}/init`, { token, method: 'POST' });
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => s.call(`${VAULT}/key`, { token: tokens[i % 3] })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    // The rows are committed by the time the answers arrived (group commit, not fire-and-forget).
    for (const user of users) {
      const audit = await auditRows(s.admin, user);
      expect(audit.filter((r) => r.action === 'fetch' && r.status === 200)).toHaveLength(10);
    }
  });

  it('each user only ever sees their own key', async () => {
    const [a, b] = [await s.token('user-a'), await s.token('user-b')];
    const ka = (await s.call(`${VAULT}/init`, { token: a, method: 'POST' })).body.masterKey;
    const kb = (await s.call(`${VAULT}/init`, { token: b, method: 'POST' })).body.masterKey;
    expect(ka).not.toBe(kb);
    expect((await s.call(`${VAULT}/key`, { token: a })).body.masterKey).toBe(ka);
    expect((await s.call(`${VAULT}/key`, { token: b })).body.masterKey).toBe(kb);
  });

  it('/status writes no audit row', async () => {
    const user = 'user-status';
    const token = await s.token(user);
    await s.call(`${VAULT}/init`, { token, method: 'POST' });
    for (let i = 0; i < 3; i++) expect((await s.call(`${VAULT}/status`, { token })).status).toBe(200);
    expect((await auditRows(s.admin, user)).map((r) => r.action)).toEqual(['init']);
  });

  it('internal metadata route: service key only, never key material', async () => {
    const user = 'user-meta';
    const token = await s.token(user);
    const mk = String((await s.call(`${VAULT}/init`, { token, method: 'POST' })).body.masterKey);
    await s.call(`${VAULT}/key`, { token });
    const path = `/api/v1/internal/vault/users/${user}`;
    expect((await s.call(path)).status).toBe(401);
    expect((await s.call(path, { headers: { 'x-service-key': 'wrong-key-wrong-key-wrong-key-wrong' } })).status).toBe(403);
    // The service checks the key too, not only the gateway.
    expect((await fetch(`${s.vault.url}${path}`)).status).toBe(401);
    const meta = await s.call(path, { headers: { 'x-service-key': SERVICE_KEY } });
    expect(meta.status).toBe(200);
    expect(meta.body).toEqual({
      userId: user,
      vaultExists: true,
      zeroKnowledge: false,
      hasRecoveryWrap: false,
      recoverySetAt: null,
      kekId: 'kek-1',
      formatVersion: 1,
      createdAt: expect.any(String),
      rotatedAt: null,
      auditEntries: 2,
    });
    expect(JSON.stringify(meta.body)).not.toContain(mk);
    const reserved = await s.call('/api/v1/internal/vault/users/erased:x', { headers: { 'x-service-key': SERVICE_KEY } });
    expect([reserved.status, reserved.body.error]).toEqual([400, 'VALIDATION_FAILED']);
    const none = await s.call('/api/v1/internal/vault/users/nobody', { headers: { 'x-service-key': SERVICE_KEY } });
    expect(none.body).toMatchObject({ vaultExists: false, auditEntries: 0, kekId: null });
  });
});
