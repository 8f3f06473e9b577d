import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpBus, createDatabase, createEvent, createLogger, type EventEnvelope } from '@mana/shared';
import { eventually } from '@mana/shared/testing';
import * as tables from '../../vault-svc/src/db/schema';
import { vaultDb } from '../../vault-svc/src/db/scope';
import { loadKeyring } from '../../vault-svc/src/domain/kek';
import { kekUsage, rewrapAll } from '../../vault-svc/src/domain/rewrap';
import { auditRows, newKek, startVaultStack, VAULT, type VaultStack } from '../../vault-svc/test/harness';
import { runScript } from '../helpers/scripts';

const keyCheck = (mk: string) => createHmac('sha256', Buffer.from(mk, 'base64')).update('mana-vault key-check v1').digest('base64');

describe('KEK rotation (rewrap) and erasure over the real bus', () => {
  const k1 = newKek();
  const k2 = newKek();
  const k3 = newKek();
  let s: VaultStack;
  const keys = new Map<string, string>();

  beforeAll(async () => {
    s = await startVaultStack({ MANA_AUTH_KEK: k1 });
  });
  afterAll(async () => {
    await s?.close(['probe']);
  });

  async function keyOf(user: string) {
    return (await s.call(`${VAULT}/key`, { token: await s.token(user) })).body;
  }

  it('serves rows under two KEKs, re-wraps them to the active one (stoppable, resumable) and reports the retired KEK', async () => {
    for (let i = 0; i < 7; i++) {
      const user = `old-${i}`;
      const res = await s.call(`${VAULT}/init`, { token: await s.token(user), method: 'POST' });
      keys.set(user, String(res.body.masterKey));
    }
    // A zero-knowledge vault has no KEK wrap: rotation leaves it alone.
    const zkToken = await s.token('zk-user');
    const zkCheck = keyCheck(String((await s.call(`${VAULT}/init`, { token: zkToken, method: 'POST' })).body.masterKey));
    await s.call(`${VAULT}/recovery-wrap`, {
      token: zkToken,
      method: 'POST',
      body: { recoveryWrappedMk: randomBytes(48).toString('base64'), recoveryIv: randomBytes(12).toString('base64'), keyCheck: zkCheck },
    });
    await s.call(`${VAULT}/zero-knowledge`, { token: zkToken, method: 'POST', body: { enable: true, keyCheck: zkCheck } });

    // Operator adds kek-2 and makes it active; kek-1 stays configured for the rows it still wraps.
    const rotated = { MANA_AUTH_KEKS: `kek-1:${k1},kek-2:${k2}`, MANA_AUTH_KEK_ACTIVE: 'kek-2' };
    await s.restartVault(rotated);
    const fresh = await s.call(`${VAULT}/init`, { token: await s.token('new-0'), method: 'POST' });
    expect(fresh.body.kekId).toBe('kek-2');
    keys.set('new-0', String(fresh.body.masterKey));
    expect(await keyOf('old-0')).toEqual({
      masterKey: keys.get('old-0'),
      formatVersion: 1,
      kekId: 'kek-1',
      keyCheck: keyCheck(keys.get('old-0') ?? ''),
    });

    const keyring = loadKeyring(rotated);
    const database = createDatabase({ url: s.db.url, schema: tables, max: 2 });
    try {
      expect(await kekUsage(vaultDb(database))).toEqual([
        { kekId: 'kek-1', vaults: 7 },
        { kekId: 'kek-2', vaults: 1 },
      ]);
      // Stop after the first batch (Ctrl-C in the command).
      const controller = new AbortController();
      const first = await rewrapAll({
        db: vaultDb(database),
        keyring,
        batchSize: 3,
        signal: controller.signal,
        onProgress: () => controller.abort(),
      });
      expect(first).toMatchObject({ stopped: true, rewrapped: 3, failed: 0, total: 7, unused: [] });
      expect(first.usage).toEqual([
        { kekId: 'kek-1', vaults: 4 },
        { kekId: 'kek-2', vaults: 4 },
      ]);
      // Resume: only rows still under an old KEK are touched.
      const progress: number[] = [];
      const second = await rewrapAll({ db: vaultDb(database), keyring, batchSize: 3, onProgress: (p) => progress.push(p.rewrapped) });
      expect(second).toMatchObject({ stopped: false, rewrapped: 4, failed: 0, total: 4, unused: ['kek-1'], missing: [] });
      expect(progress).toEqual([3, 4]);
      expect(second.usage).toEqual([{ kekId: 'kek-2', vaults: 8 }]);
      // Idempotent: a third run has nothing to do.
      expect(await rewrapAll({ db: vaultDb(database), keyring })).toMatchObject({ rewrapped: 0, total: 0 });
    } finally {
      await database.close();
    }

    // kek-1 can go: every key still opens, now under kek-2.
    await s.restartVault({ MANA_AUTH_KEKS: `kek-2:${k2}`, MANA_AUTH_KEK_ACTIVE: 'kek-2' });
    for (const [user, mk] of keys)
      expect(await keyOf(user)).toEqual({ masterKey: mk, formatVersion: 1, kekId: 'kek-2', keyCheck: keyCheck(mk) });
    expect((await keyOf('zk-user')).requiresRecoveryCode).toBe(true);
    const audit = await auditRows(s.admin, 'old-0');
    expect(audit.filter((r) => r.action === 'rewrap').map((r) => r.context)).toEqual([{ from: 'kek-1', to: 'kek-2' }]);
  });

  it('the operator command re-wraps to a new KEK and says when the old one is unused', async () => {
    const env = {
      ...process.env,
      ...s.vaultEnv,
      MANA_AUTH_KEK: '',
      MANA_AUTH_KEKS: `kek-2:${k2},kek-3:${k3}`,
      MANA_AUTH_KEK_ACTIVE: 'kek-3',
    };
    const script = 'vault-svc/scripts/rewrap.ts';
    const status = await runScript(script, ['--status'], env);
    expect(status.stdout).toContain('active KEK: kek-3');
    expect(status.stdout).toContain('kek-2: 8 vault(s)');
    const { stdout } = await runScript(script, ['--batch-size', '5'], env);
    expect(stdout).toContain('progress: 5/8');
    expect(stdout).toContain('done: re-wrapped 8, failed 0');
    expect(stdout).toContain('KEK kek-2 is no longer used by any vault');
    // No master key ever reaches the output.
    for (const mk of keys.values()) expect(stdout).not.toContain(mk);
    await s.restartVault({ MANA_AUTH_KEKS: `kek-3:${k3}` });
    for (const [user, mk] of keys) expect((await keyOf(user)).masterKey).toBe(mk);
  });

  it('a rewrap without the KEK the rows need changes nothing and names the missing KEK', async () => {
    const database = createDatabase({ url: s.db.url, schema: tables, max: 2 });
    try {
      const result = await rewrapAll({ db: vaultDb(database), keyring: loadKeyring({ MANA_AUTH_KEKS: `kek-4:${newKek()}` }) });
      expect(result).toMatchObject({ rewrapped: 0, failed: 8, missing: ['kek-3'], unused: [] });
      expect(new Set(result.failures.map((f) => f.code))).toEqual(new Set(['KEK_UNKNOWN']));
      expect(result.usage).toEqual([{ kekId: 'kek-3', vaults: 8 }]);
    } finally {
      await database.close();
    }
  });

  it('erasure: deletes the vault, pseudonymizes the audit rows, publishes user.erasure.completed.v1 once', async () => {
    const user = 'old-1';
    const before = await auditRows(s.admin, user);
    expect(before.length).toBeGreaterThan(0);

    const probe = new AmqpBus({
      url: s.bus.AMQP_URL,
      exchange: s.bus.AMQP_EXCHANGE,
      queuePrefix: s.bus.AMQP_QUEUE_PREFIX,
      logger: createLogger('probe', 'silent'),
    });
    const completed: EventEnvelope[] = [];
    await probe.subscribe({ queue: 'probe', bindings: ['user.erasure.completed.v1'], handler: async (e) => void completed.push(e) });
    await probe.start();
    try {
      const requestId = randomUUID();
      const request = createEvent('user.erasure.requested.v1', { requestId, userId: user });
      await probe.publish(request);
      const done = await eventually(() =>
        completed.find((e) => e.type === 'user.erasure.completed.v1' && (e.data as { requestId: string }).requestId === requestId),
      );
      expect(done.data).toEqual({
        requestId,
        userId: user,
        service: 'vault',
        deleted: { encryption_vaults: 1 },
        pseudonymized: { encryption_vault_audit: before.length },
        retained: {},
      });

      // Crypto-shredded: no row, the key is gone.
      expect((await s.admin.query('select 1 from vault.encryption_vaults where user_id = $1', [user])).rowCount).toBe(0);
      const gone = await s.call(`${VAULT}/key`, { token: await s.token(user) });
      expect(gone.body.error).toBe('VAULT_NOT_FOUND');
      // The trail stays under one pseudonym; the user id is gone from it, and the 404 fetch above added no row.
      const { rows } = await s.admin.query<{ user_id: string; n: number }>(
        "select user_id, count(*)::int as n from vault.encryption_vault_audit where user_id like 'erased:%' group by user_id",
      );
      expect(rows).toEqual([{ user_id: expect.stringMatching(/^erased:[0-9a-f-]{36}$/), n: before.length }]);
      expect(await auditRows(s.admin, user)).toEqual([]);

      // A redelivered request changes nothing and publishes nothing new.
      await probe.publish(request);
      const { rows: outbox } = await eventually(async () => {
        const r = await s.admin.query<{ n: number }>('select count(*)::int as n from vault.processed_messages where message_id = $1', [
          request.id,
        ]);
        return r.rows[0]?.n === 1
          ? s.admin.query<{ n: number }>("select count(*)::int as n from vault.outbox where type = 'user.erasure.completed.v1'")
          : undefined;
      });
      expect(outbox[0]?.n).toBe(1);
      // Another user's vault is untouched.
      expect((await keyOf('old-2')).masterKey).toBe(keys.get('old-2'));
    } finally {
      await probe.close();
    }
  });
});
