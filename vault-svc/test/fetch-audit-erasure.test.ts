import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, lockWaiters as lockWaitersOf } from '@mana/shared/testing';
import { DEV_PSEUDONYM_SECRET } from '../src/config';
import { pseudonymFor } from '../src/domain/pseudonym';
import { eraseVault } from '../src/events/erasure';
import { auditRows, startVaultStack, VAULT, vaultErasure, type VaultErasure, type VaultStack } from './harness';

/** The advisory lock the test's trigger makes a fetch audit row wait for. */
const HOLD = 4242;

/**
 * After a user's erasure (vault row deleted, audit rows pseudonymized) no audit row may name the user again:
 * not the row of a key fetch that read the vault just before the erasure, nor the row of a request that finds
 * no vault afterwards. The interleavings are forced with locks (a held erasure transaction, a trigger waiting
 * for an advisory lock the test holds), never with timing.
 */
describe('vault-svc: key-fetch audit and the erasure', () => {
  let s: VaultStack;
  let erasure: VaultErasure;

  beforeAll(async () => {
    s = await startVaultStack();
    erasure = vaultErasure(s);
  });
  afterAll(async () => {
    await erasure?.close();
    await s?.close();
  });

  const erase = (userId: string) => erasure.erase(userId);
  const lockWaiters = () => lockWaitersOf(s.admin);
  const withVault = async (user: string) => {
    const token = await s.token(user);
    expect((await s.call(`${VAULT}/init`, { token, method: 'POST' })).status).toBe(200);
    return token;
  };

  it('erase, then fetch and act: 404 VAULT_NOT_FOUND, and no audit row names the user', async () => {
    const user = 'user-erased-then-fetch';
    const token = await withVault(user);
    expect((await s.call(`${VAULT}/key`, { token })).status).toBe(200);
    expect(await erase(user)).toMatchObject({ deleted: { encryption_vaults: 1 }, pseudonymized: { encryption_vault_audit: 2 } });
    expect(await s.call(`${VAULT}/key`, { token })).toMatchObject({ status: 404, body: { error: 'VAULT_NOT_FOUND' } });
    expect(await s.call(`${VAULT}/rotate`, { token, method: 'POST' })).toMatchObject({ status: 404, body: { error: 'VAULT_NOT_FOUND' } });
    expect(await auditRows(s.admin, user)).toEqual([]);
  });

  it('a fetch that read the key before an erasure that commits before its audit row: 404, no key, no row', async () => {
    const user = 'user-erased-mid-fetch';
    const token = await withVault(user);
    // The erasure deletes the vault and pseudonymizes the trail, and holds its commit.
    let release = () => undefined as void;
    let erased = () => undefined as void;
    const gate = new Promise<void>((r) => (release = r));
    const deleted = new Promise<void>((r) => (erased = r));
    const erasing = erasure.db.transaction(async (tx) => {
      await eraseVault(tx, user, pseudonymFor(DEV_PSEUDONYM_SECRET, user));
      erased();
      await gate;
    });
    await deleted;
    // The fetch still reads the vault (the delete is not committed) and then writes its audit row, or waits for
    // the erasure to settle whether the vault still exists.
    let answered = false;
    const fetching = s.call(`${VAULT}/key`, { token }).finally(() => (answered = true));
    await eventually(async () => (answered || (await lockWaiters()) >= 1 ? true : undefined));
    release();
    await erasing;
    const res = await fetching;
    expect(res).toMatchObject({ status: 404, body: { error: 'VAULT_NOT_FOUND' } });
    expect(res.body.masterKey).toBeUndefined();
    expect(await auditRows(s.admin, user)).toEqual([]);
  });

  it('a fetch whose audit row is being written when the erasure starts: the erasure pseudonymizes that row too', async () => {
    const user = 'user-fetch-mid-erasure';
    const token = await withVault(user);
    // A trigger makes every fetch row wait for an advisory lock the test holds: the fetch has read the key and
    // is writing its row when the erasure begins.
    await s.admin.query(`create function public.hold_fetch_audit() returns trigger language plpgsql as $$
      begin perform pg_advisory_xact_lock_shared(${HOLD}); return new; end $$`);
    await s.admin.query(`create trigger hold_fetch_audit before insert on vault.encryption_vault_audit
      for each row when (new.action = 'fetch') execute function public.hold_fetch_audit()`);
    await s.admin.query('select pg_advisory_lock($1)', [HOLD]);
    try {
      const fetching = s.call(`${VAULT}/key`, { token });
      await eventually(async () => ((await lockWaiters()) >= 1 ? true : undefined));
      // The erasure either commits at once (nothing orders it with the pending row) or waits for the fetch.
      let done = false;
      const erasing = erase(user).finally(() => (done = true));
      await eventually(async () => (done || (await lockWaiters()) >= 2 ? true : undefined));
      await s.admin.query('select pg_advisory_unlock($1)', [HOLD]);
      const [res, counts] = await Promise.all([fetching, erasing]);
      expect(res.status).toBe(200);
      expect(counts).toMatchObject({ deleted: { encryption_vaults: 1 }, pseudonymized: { encryption_vault_audit: 2 } });
      expect(await auditRows(s.admin, user)).toEqual([]);
    } finally {
      await s.admin.query('select pg_advisory_unlock_all()');
      await s.admin.query('drop trigger hold_fetch_audit on vault.encryption_vault_audit');
      await s.admin.query('drop function public.hold_fetch_audit()');
    }
  });
});
