import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, lockWaiters as lockWaitersOf } from '@mana/shared/testing';
import { DEV_PSEUDONYM_SECRET } from '../src/config';
import { pseudonymFor } from '../src/domain/pseudonym';
import { eraseVault } from '../src/events/erasure';
import { auditRows, startVaultStack, VAULT, vaultErasure, type VaultErasure, type VaultStack } from './harness';

/** The advisory lock the test's trigger makes an audit row of one action wait for. */
const HOLD = 4343;

/**
 * An erased user's vault is never made again, and a key fetch never waits for a vault change's commit. The
 * interleavings are forced with locks (a held erasure transaction, a trigger holding an action's audit row on an
 * advisory lock the test holds) and observed in pg_locks, never with timing.
 */
describe('vault-svc: POST /init and the erasure', () => {
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
  const vaultRows = async (userId: string) =>
    (await s.admin.query('select user_id from vault.encryption_vaults where user_id = $1', [userId])).rowCount;
  const init = (token: string) => s.call(`${VAULT}/init`, { token, method: 'POST' });

  /** Makes every audit row of `action` wait for HOLD (held by the test) until `release`. */
  async function holdAuditRows(action: string) {
    await s.admin.query(`create function public.hold_audit() returns trigger language plpgsql as $$
      begin perform pg_advisory_xact_lock_shared(${HOLD}); return new; end $$`);
    await s.admin.query(`create trigger hold_audit before insert on vault.encryption_vault_audit
      for each row when (new.action = '${action}') execute function public.hold_audit()`);
    await s.admin.query('select pg_advisory_lock($1)', [HOLD]);
    return {
      release: () => s.admin.query('select pg_advisory_unlock($1)', [HOLD]),
      cleanup: async () => {
        await s.admin.query('select pg_advisory_unlock_all()');
        await s.admin.query('drop trigger hold_audit on vault.encryption_vault_audit');
        await s.admin.query('drop function public.hold_audit()');
      },
    };
  }

  it('after the erasure, /init with a still-valid token: 410 VAULT_ERASED, no vault, no row names the user', async () => {
    const user = 'user-init-after-erasure';
    const token = await s.token(user);
    expect((await init(token)).status).toBe(200);
    expect(await erase(user)).toMatchObject({ deleted: { encryption_vaults: 1 }, pseudonymized: { encryption_vault_audit: 1 } });
    // The client sees 404 on GET /key and tries to set its vault up again.
    expect(await s.call(`${VAULT}/key`, { token })).toMatchObject({ status: 404, body: { error: 'VAULT_NOT_FOUND' } });
    expect(await init(token)).toMatchObject({ status: 410, body: { error: 'VAULT_ERASED' } });
    expect(await vaultRows(user)).toBe(0);
    expect(await auditRows(s.admin, user)).toEqual([]);
    // The tombstone is the keyed pseudonym, never the id.
    const { rows } = await s.admin.query<{ pseudonym: string }>('select pseudonym from vault.erased_users');
    expect(rows.map((r) => r.pseudonym)).toContain(pseudonymFor(DEV_PSEUDONYM_SECRET, user));
    expect(JSON.stringify(rows)).not.toContain(user);
  });

  it('an /init whose vault is not committed when the erasure starts: the erasure waits and deletes it', async () => {
    const user = 'user-init-mid-erasure';
    const token = await s.token(user);
    // /init has inserted the vault row (uncommitted: a DELETE cannot see it) and is writing its audit row.
    const hold = await holdAuditRows('init');
    try {
      const initing = init(token);
      await eventually(async () => ((await lockWaiters()) >= 1 ? true : undefined));
      // The erasure either commits at once (nothing orders it with the pending vault) or waits for /init's commit.
      let done = false;
      const erasing = erase(user).finally(() => (done = true));
      await eventually(async () => (done || (await lockWaiters()) >= 2 ? true : undefined));
      await hold.release();
      const [res, counts] = await Promise.all([initing, erasing]);
      expect(res.status).toBe(200);
      expect(counts).toMatchObject({ deleted: { encryption_vaults: 1 }, pseudonymized: { encryption_vault_audit: 1 } });
    } finally {
      await hold.cleanup();
    }
    expect(await vaultRows(user)).toBe(0);
    expect(await auditRows(s.admin, user)).toEqual([]);
    expect(await init(token)).toMatchObject({ status: 410, body: { error: 'VAULT_ERASED' } });
  });

  it('an /init while the erasure is not committed yet: it waits for the erasure and is refused', async () => {
    const user = 'user-init-behind-erasure';
    const token = await s.token(user);
    let release = () => undefined as void;
    let erased = () => undefined as void;
    const gate = new Promise<void>((r) => (release = r));
    const started = new Promise<void>((r) => (erased = r));
    const erasing = erasure.db.transaction(async (tx) => {
      await eraseVault(tx, user, pseudonymFor(DEV_PSEUDONYM_SECRET, user));
      erased();
      await gate;
    });
    await started;
    let answered = false;
    const initing = init(token).finally(() => (answered = true));
    await eventually(async () => (answered || (await lockWaiters()) >= 1 ? true : undefined));
    release();
    await erasing;
    expect(await initing).toMatchObject({ status: 410, body: { error: 'VAULT_ERASED' } });
    expect(await vaultRows(user)).toBe(0);
    expect(await auditRows(s.admin, user)).toEqual([]);
  });

  it('a key fetch does not wait for a rotation holding the vault row', async () => {
    const user = 'user-fetch-during-rotation';
    const token = await s.token(user);
    expect((await init(token)).status).toBe(200);
    const before = (await s.call(`${VAULT}/key`, { token })).body.masterKey;
    // The rotation has locked and updated the vault row and is writing its audit row, uncommitted.
    const hold = await holdAuditRows('rotate');
    try {
      const rotating = s.call(`${VAULT}/rotate`, { token, method: 'POST' });
      await eventually(async () => ((await lockWaiters()) >= 1 ? true : undefined));
      // The fetch answers (the committed key), or waits for the rotation's row lock.
      let answered = false;
      const fetching = s.call(`${VAULT}/key`, { token }).finally(() => (answered = true));
      await eventually(async () => (answered || (await lockWaiters()) >= 2 ? true : undefined));
      expect(answered).toBe(true);
      expect(await fetching).toMatchObject({ status: 200, body: { masterKey: before } });
      await hold.release();
      expect((await rotating).status).toBe(200);
    } finally {
      await hold.cleanup();
    }
    expect((await s.call(`${VAULT}/key`, { token })).body.masterKey).not.toBe(before);
  });
});
