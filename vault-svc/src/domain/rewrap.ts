import { and, eq, sql } from 'drizzle-orm';
import { appendAudit } from '../db/audit';
import { encryptionVaults } from '../db/schema';
import { withAppRole, withUserScope, type Tx, type VaultDb } from '../db/scope';
import { VaultCryptoError, unwrapMasterKey, wrapMasterKey, type Keyring } from './kek';
import { keyCheckOf } from './key-check';

export interface KekUsage {
  kekId: string;
  vaults: number;
}

export interface RewrapProgress {
  rewrapped: number;
  failed: number;
  /** Vaults not under the active KEK when the run started. */
  total: number;
}

export interface RewrapResult extends RewrapProgress {
  stopped: boolean;
  failures: { userId: string; code: string }[];
  usage: KekUsage[];
  /** Configured, non-active KEKs that no vault uses any more: safe to remove from MANA_AUTH_KEKS. */
  unused: string[];
  /** KEK ids found on rows but not configured: those vaults cannot be opened until the KEK is added back. */
  missing: string[];
}

export interface RewrapOptions {
  db: VaultDb;
  keyring: Keyring;
  batchSize?: number;
  /** Aborting stops after the row in hand; the next run resumes (only rows not under the active KEK remain). */
  signal?: AbortSignal;
  onProgress?: (p: RewrapProgress) => void;
}

/** How many vaults each KEK still wraps (ids and counts only). */
export async function kekUsage(db: VaultDb): Promise<KekUsage[]> {
  const result = await withAppRole(db, (tx) => tx.execute<{ kek_id: string; vaults: string }>(sql`select * from vault.kek_usage()`));
  return result.rows.map((r) => ({ kekId: r.kek_id, vaults: Number(r.vaults) }));
}

async function candidates(db: VaultDb, active: string, after: string | null, limit: number): Promise<string[]> {
  const result = await withAppRole(db, (tx) =>
    tx.execute<{ user_id: string }>(sql`select user_id from vault.rewrap_candidates(${active}, ${after}, ${limit})`),
  );
  return result.rows.map((r) => r.user_id);
}

/**
 * Re-wraps one vault inside its owner's scope; the MK exists in memory only between unwrap and wrap. The row is
 * taken FOR NO KEY UPDATE (the key does not change): key fetches, whose audit rows take it FOR KEY SHARE, do not
 * wait for it, while a rotation or another re-wrap still does.
 */
async function rewrapOne(tx: Tx, keyring: Keyring, userId: string): Promise<boolean> {
  const [row] = await tx.select().from(encryptionVaults).where(eq(encryptionVaults.userId, userId)).for('no key update');
  if (!row?.wrappedMk || !row.wrapIv || !row.kekId || row.kekId === keyring.activeId) return false;
  const mk = unwrapMasterKey(keyring, userId, {
    wrappedMk: row.wrappedMk,
    iv: row.wrapIv,
    kekId: row.kekId,
    formatVersion: row.formatVersion,
  });
  try {
    const wrap = wrapMasterKey(keyring, userId, mk);
    await tx
      .update(encryptionVaults)
      .set({
        wrappedMk: wrap.wrappedMk,
        wrapIv: wrap.iv,
        kekId: wrap.kekId,
        formatVersion: wrap.formatVersion,
        // The key is in hand: a vault from before check values existed gets its own.
        keyCheck: row.keyCheck ?? keyCheckOf(mk),
      })
      .where(and(eq(encryptionVaults.userId, userId), eq(encryptionVaults.kekId, row.kekId)));
  } finally {
    mk.fill(0);
  }
  await appendAudit(tx, { userId, action: 'rewrap', status: 200, context: { from: row.kekId, to: keyring.activeId } });
  return true;
}

/**
 * Re-wraps every vault to the active KEK, in keyset-paged batches, one user-scoped transaction per row.
 * Idempotent: it only ever touches rows whose kek_id is not the active one.
 */
export async function rewrapAll(opts: RewrapOptions): Promise<RewrapResult> {
  const { db, keyring } = opts;
  const batchSize = opts.batchSize ?? 100;
  const before = await kekUsage(db);
  const progress: RewrapProgress = {
    rewrapped: 0,
    failed: 0,
    total: before.filter((u) => u.kekId !== keyring.activeId).reduce((n, u) => n + u.vaults, 0),
  };
  const failures: RewrapResult['failures'] = [];
  let after: string | null = null;
  while (!opts.signal?.aborted) {
    const ids = await candidates(db, keyring.activeId, after, batchSize);
    if (ids.length === 0) break;
    for (const userId of ids) {
      if (opts.signal?.aborted) break;
      try {
        if (await withUserScope(db, userId, (tx) => rewrapOne(tx, keyring, userId))) progress.rewrapped += 1;
      } catch (err) {
        if (!(err instanceof VaultCryptoError)) throw err;
        progress.failed += 1;
        failures.push({ userId, code: err.code });
      }
      after = userId;
    }
    opts.onProgress?.({ ...progress });
  }
  const usage = await kekUsage(db);
  const used = new Set(usage.map((u) => u.kekId));
  return {
    ...progress,
    stopped: opts.signal?.aborted ?? false,
    failures,
    usage,
    unused: keyring.ids().filter((id) => id !== keyring.activeId && !used.has(id)),
    missing: [...used].filter((id) => !keyring.has(id)),
  };
}
