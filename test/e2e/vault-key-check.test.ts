import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRows, startVaultStack, VAULT, type VaultStack } from '../../vault-svc/test/harness';

const b64 = (n: number) => randomBytes(n).toString('base64');
const recoveryWrap = () => ({ recoveryWrappedMk: b64(48), recoveryIv: b64(12) });
/** What a client computes from the master key it holds: base64 HMAC-SHA256(key = MK, "mana-vault key-check v1"). */
const keyCheck = (mk: string) => createHmac('sha256', Buffer.from(mk, 'base64')).update('mana-vault key-check v1').digest('base64');

describe('vault-svc: the key check value keeps a token alone from destroying or swapping the master key', () => {
  let s: VaultStack;
  beforeAll(async () => {
    s = await startVaultStack();
  });
  afterAll(async () => {
    await s?.close();
  });

  const storedCheck = async (user: string) =>
    (await s.admin.query<{ key_check: Buffer | null }>('select key_check from vault.encryption_vaults where user_id = $1', [user])).rows[0]
      ?.key_check ?? null;

  /** A vault as the code before check values left it: no stored key_check. */
  const forgetCheck = (user: string) => s.admin.query('update vault.encryption_vaults set key_check = null where user_id = $1', [user]);

  it('/init, /key and /rotate answer keyCheck, the stored check value of the current key', async () => {
    const user = 'user-check';
    const token = await s.token(user);
    const init = await s.call(`${VAULT}/init`, { token, method: 'POST' });
    const mk = String(init.body.masterKey);
    expect(init.body.keyCheck).toBe(keyCheck(mk));
    expect((await storedCheck(user))?.toString('base64')).toBe(keyCheck(mk));
    expect((await s.call(`${VAULT}/key`, { token })).body.keyCheck).toBe(keyCheck(mk));
    const rotated = await s.call(`${VAULT}/rotate`, { token, method: 'POST' });
    expect(rotated.body.keyCheck).toBe(keyCheck(String(rotated.body.masterKey)));
    expect((await storedCheck(user))?.toString('base64')).toBe(keyCheck(String(rotated.body.masterKey)));
    // The old key's check value no longer opens anything.
    const stale = await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: { ...recoveryWrap(), keyCheck: keyCheck(mk) } });
    expect([stale.status, stale.body.error]).toEqual([409, 'MASTER_KEY_MISMATCH']);
  });

  it('POST /recovery-wrap and enabling zero-knowledge need the right keyCheck (missing, wrong or malformed → 409), changing nothing', async () => {
    const user = 'user-guard';
    const token = await s.token(user);
    const mk = String((await s.call(`${VAULT}/init`, { token, method: 'POST' })).body.masterKey);
    for (const given of [undefined, keyCheck(b64(32)), 'not base64!', b64(16)]) {
      const res = await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: { ...recoveryWrap(), keyCheck: given } });
      expect([res.status, res.body.error]).toEqual([409, 'MASTER_KEY_MISMATCH']);
    }
    expect((await s.call(`${VAULT}/status`, { token })).body.hasRecoveryWrap).toBe(false);

    const wrap = recoveryWrap();
    expect((await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: { ...wrap, keyCheck: keyCheck(mk) } })).status).toBe(200);
    for (const given of [undefined, keyCheck(b64(32))]) {
      const res = await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: true, keyCheck: given } });
      expect([res.status, res.body.error]).toEqual([409, 'MASTER_KEY_MISMATCH']);
    }
    expect((await s.call(`${VAULT}/key`, { token })).body.masterKey).toBe(mk);
    expect(
      (await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: true, keyCheck: keyCheck(mk) } })).status,
    ).toBe(200);

    // In zero-knowledge mode the recovery wrap is the only way to the key: it cannot be overwritten blindly.
    const overwrite = await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: recoveryWrap() });
    expect([overwrite.status, overwrite.body.error]).toEqual([409, 'MASTER_KEY_MISMATCH']);
    const key = await s.call(`${VAULT}/key`, { token });
    expect(key.body).toEqual({
      requiresRecoveryCode: true,
      recoveryWrappedMk: wrap.recoveryWrappedMk,
      recoveryIv: wrap.recoveryIv,
      keyCheck: keyCheck(mk),
    });

    const audit = await auditRows(s.admin, user);
    expect(audit.filter((a) => a.status === 409).map((a) => [a.action, a.context.error])).toEqual([
      ['recovery_set', 'MASTER_KEY_MISMATCH'],
      ['recovery_set', 'MASTER_KEY_MISMATCH'],
      ['recovery_set', 'MASTER_KEY_MISMATCH'],
      ['recovery_set', 'MASTER_KEY_MISMATCH'],
      ['zk_enabled', 'MASTER_KEY_MISMATCH'],
      ['zk_enabled', 'MASTER_KEY_MISMATCH'],
      ['recovery_set', 'MASTER_KEY_MISMATCH'],
    ]);
  });

  it("leaving zero-knowledge mode refuses a master key that is not the vault's (the server never adopts another key)", async () => {
    const user = 'user-swap';
    const token = await s.token(user);
    const mk = String((await s.call(`${VAULT}/init`, { token, method: 'POST' })).body.masterKey);
    await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: { ...recoveryWrap(), keyCheck: keyCheck(mk) } });
    await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: true, keyCheck: keyCheck(mk) } });
    const swap = await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: false, masterKey: b64(32) } });
    expect([swap.status, swap.body.error]).toEqual([409, 'MASTER_KEY_MISMATCH']);
    expect((await s.call(`${VAULT}/status`, { token })).body.zeroKnowledge).toBe(true);
    expect((await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: false, masterKey: mk } })).status).toBe(200);
    expect((await s.call(`${VAULT}/key`, { token })).body).toMatchObject({ masterKey: mk, keyCheck: keyCheck(mk) });
  });

  it('a vault from before check values gets its check value when the server next unwraps its key', async () => {
    const byFetch = 'user-legacy-fetch';
    const t1 = await s.token(byFetch);
    const mk1 = String((await s.call(`${VAULT}/init`, { token: t1, method: 'POST' })).body.masterKey);
    await forgetCheck(byFetch);
    expect((await s.call(`${VAULT}/key`, { token: t1 })).body.keyCheck).toBe(keyCheck(mk1));
    expect((await storedCheck(byFetch))?.toString('base64')).toBe(keyCheck(mk1));

    // Checking a client's keyCheck unwraps the key too: the right one passes, a wrong one does not.
    const byCheck = 'user-legacy-check';
    const t2 = await s.token(byCheck);
    const mk2 = String((await s.call(`${VAULT}/init`, { token: t2, method: 'POST' })).body.masterKey);
    await forgetCheck(byCheck);
    const wrong = await s.call(`${VAULT}/recovery-wrap`, {
      token: t2,
      method: 'POST',
      body: { ...recoveryWrap(), keyCheck: keyCheck(b64(32)) },
    });
    expect([wrong.status, wrong.body.error]).toEqual([409, 'MASTER_KEY_MISMATCH']);
    expect(
      (await s.call(`${VAULT}/recovery-wrap`, { token: t2, method: 'POST', body: { ...recoveryWrap(), keyCheck: keyCheck(mk2) } })).status,
    ).toBe(200);
    expect((await storedCheck(byCheck))?.toString('base64')).toBe(keyCheck(mk2));
  });

  it('a zero-knowledge vault from before check values: no keyCheck to answer or compare (recovery wrap refused) until it leaves zero-knowledge mode', async () => {
    const user = 'user-legacy-zk';
    const token = await s.token(user);
    const mk = String((await s.call(`${VAULT}/init`, { token, method: 'POST' })).body.masterKey);
    await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: { ...recoveryWrap(), keyCheck: keyCheck(mk) } });
    await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: true, keyCheck: keyCheck(mk) } });
    await forgetCheck(user);
    expect((await s.call(`${VAULT}/key`, { token })).body).toMatchObject({ requiresRecoveryCode: true, keyCheck: null });
    const refused = await s.call(`${VAULT}/recovery-wrap`, { token, method: 'POST', body: { ...recoveryWrap(), keyCheck: keyCheck(mk) } });
    expect([refused.status, refused.body.error]).toEqual([409, 'MASTER_KEY_MISMATCH']);
    // The server cannot tell the key apart: it takes the one handed back and records its check value.
    expect((await s.call(`${VAULT}/zero-knowledge`, { token, method: 'POST', body: { enable: false, masterKey: mk } })).status).toBe(200);
    expect((await storedCheck(user))?.toString('base64')).toBe(keyCheck(mk));
  });
});
