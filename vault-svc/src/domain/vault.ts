import { and, count, eq, isNull, sql } from 'drizzle-orm';
import { encryptionVaultAudit, encryptionVaults } from '../db/schema';
import type { Tx } from '../db/scope';
import { toBase64 } from './base64';
import { VAULT_ERRORS } from './errors';
import { generateMasterKey, unwrapMasterKey, wrapMasterKey, type Keyring } from './kek';
import { keyCheckMatches, keyCheckOf } from './key-check';

type VaultRow = typeof encryptionVaults.$inferSelect;
/** The columns a key answer is built from. */
export type WrapColumns = Pick<
  VaultRow,
  'userId' | 'wrappedMk' | 'wrapIv' | 'kekId' | 'formatVersion' | 'zeroKnowledge' | 'recoveryWrappedMk' | 'recoveryIv' | 'keyCheck'
>;

export interface VaultStatus {
  vaultExists: boolean;
  hasRecoveryWrap: boolean;
  zeroKnowledge: boolean;
  recoverySetAt: string | null;
}

/**
 * `keyCheck` is the master key's check value (domain/key-check.ts); null only for a zero-knowledge vault
 * created before check values existed (the server cannot compute it without the key).
 */
export type KeyResponse =
  | { masterKey: string; formatVersion: number; kekId: string; keyCheck: string }
  | { requiresRecoveryCode: true; recoveryWrappedMk: string; recoveryIv: string; keyCheck: string | null };

/**
 * Every vault operation runs inside a user-scoped transaction (`withUserScope`); RLS is the second fence.
 * `forUpdate` takes the row FOR NO KEY UPDATE: the changes (rotate, recovery wrap, zero-knowledge, re-wrap) stay
 * serialised with each other and with the erasure's DELETE, but never change the key, so they do not conflict with
 * the FOR KEY SHARE an audit insert takes (a key fetch does not wait behind a rotation's commit).
 */
async function loadRow(tx: Tx, userId: string, forUpdate = false): Promise<VaultRow | undefined> {
  const query = tx.select().from(encryptionVaults).where(eq(encryptionVaults.userId, userId));
  const [row] = forUpdate ? await query.for('no key update') : await query;
  return row;
}

async function requireRow(tx: Tx, userId: string, forUpdate = false): Promise<VaultRow> {
  const row = await loadRow(tx, userId, forUpdate);
  if (!row) throw VAULT_ERRORS.notFound();
  return row;
}

/** Unwraps in standard mode; in zero-knowledge mode hands out the recovery wrap only the client can open. */
export function keyResponse(keyring: Keyring, row: WrapColumns): KeyResponse {
  if (row.zeroKnowledge || !row.wrappedMk || !row.wrapIv || !row.kekId) {
    if (!row.recoveryWrappedMk || !row.recoveryIv) throw new Error('vault row without any wrap'); // the CHECKs forbid it
    return {
      requiresRecoveryCode: true,
      recoveryWrappedMk: toBase64(row.recoveryWrappedMk),
      recoveryIv: toBase64(row.recoveryIv),
      keyCheck: row.keyCheck ? toBase64(row.keyCheck) : null,
    };
  }
  const mk = unwrapMasterKey(keyring, row.userId, {
    wrappedMk: row.wrappedMk,
    iv: row.wrapIv,
    kekId: row.kekId,
    formatVersion: row.formatVersion,
  });
  const masterKey = toBase64(mk);
  const keyCheck = toBase64(keyCheckOf(mk));
  mk.fill(0);
  return { masterKey, formatVersion: row.formatVersion, kekId: row.kekId, keyCheck };
}

/**
 * Vaults created before check values existed get theirs the next time the server unwraps their key
 * (a key fetch, /init, a check of a client's keyCheck, a KEK re-wrap). No-op when one is stored.
 */
export async function storeMissingKeyCheck(tx: Tx, row: Pick<VaultRow, 'userId' | 'keyCheck'>, key: KeyResponse): Promise<void> {
  if (row.keyCheck !== null || !('masterKey' in key)) return;
  await tx
    .update(encryptionVaults)
    .set({ keyCheck: Buffer.from(key.keyCheck, 'base64') })
    .where(and(eq(encryptionVaults.userId, row.userId), isNull(encryptionVaults.keyCheck)));
}

/** Refuses (409 MASTER_KEY_MISMATCH) a keyCheck that is missing or not this vault's. */
async function requireKeyCheck(tx: Tx, keyring: Keyring, row: VaultRow, given: string | undefined): Promise<void> {
  let expected = row.keyCheck;
  if (expected === null && !row.zeroKnowledge) {
    const key = keyResponse(keyring, row);
    await storeMissingKeyCheck(tx, row, key);
    if ('masterKey' in key) expected = Buffer.from(key.keyCheck, 'base64');
  }
  // A zero-knowledge vault without a stored check value cannot be checked: refused (disable zero-knowledge first).
  if (!keyCheckMatches(expected, given)) throw VAULT_ERRORS.masterKeyMismatch();
}

/**
 * Takes the user's lock (the one the erasure takes before its DELETE) and refuses (410 VAULT_ERASED) a user whose
 * erasure left a tombstone (`pseudonym`: the keyed one, domain/pseudonym.ts). Under READ COMMITTED whichever comes
 * second sees the first: the erasure deletes the vault this transaction commits, or this reads its tombstone.
 */
async function claimUser(tx: Tx, pseudonym: string): Promise<void> {
  const result = await tx.execute<{ erased: boolean }>(sql`select vault.claim_user(${pseudonym}) as erased`);
  if (result.rows[0]?.erased) throw VAULT_ERRORS.erased();
}

/**
 * Idempotent: the first call mints and wraps a fresh MK. Concurrent first calls race on the primary key;
 * ON CONFLICT DO NOTHING waits for the winner, and the read that follows sees its row. Never for an erased user
 * (`claimUser`, before the insert: a vault row that does not exist yet cannot be locked).
 */
export async function initVault(
  tx: Tx,
  keyring: Keyring,
  userId: string,
  pseudonym: string,
): Promise<{ key: KeyResponse; created: boolean }> {
  await claimUser(tx, pseudonym);
  const mk = generateMasterKey();
  const wrap = wrapMasterKey(keyring, userId, mk);
  const keyCheck = keyCheckOf(mk);
  mk.fill(0);
  const inserted = await tx
    .insert(encryptionVaults)
    .values({ userId, wrappedMk: wrap.wrappedMk, wrapIv: wrap.iv, kekId: wrap.kekId, formatVersion: wrap.formatVersion, keyCheck })
    .onConflictDoNothing({ target: encryptionVaults.userId })
    .returning({ userId: encryptionVaults.userId });
  const row = await requireRow(tx, userId);
  const key = keyResponse(keyring, row);
  await storeMissingKeyCheck(tx, row, key);
  return { key, created: inserted.length > 0 };
}

/** Destructive by design: the old MK is gone, and so is a recovery wrap of it (it would recover the old key). */
export async function rotateKey(tx: Tx, keyring: Keyring, userId: string) {
  const row = await requireRow(tx, userId, true);
  if (row.zeroKnowledge) throw VAULT_ERRORS.zkRotateForbidden();
  const mk = generateMasterKey();
  const wrap = wrapMasterKey(keyring, userId, mk);
  const masterKey = toBase64(mk);
  const keyCheck = keyCheckOf(mk);
  mk.fill(0);
  await tx
    .update(encryptionVaults)
    .set({
      keyCheck,
      wrappedMk: wrap.wrappedMk,
      wrapIv: wrap.iv,
      kekId: wrap.kekId,
      formatVersion: wrap.formatVersion,
      recoveryWrappedMk: null,
      recoveryIv: null,
      recoverySetAt: null,
      rotatedAt: new Date(),
    })
    .where(eq(encryptionVaults.userId, userId));
  const key: KeyResponse = { masterKey, formatVersion: wrap.formatVersion, kekId: wrap.kekId, keyCheck: toBase64(keyCheck) };
  return { key, recoveryWrapCleared: row.recoveryWrappedMk !== null };
}

/** `keyCheck` proves the client wrapped this vault's MK (a garbage wrap could lose the key for good). */
export async function setRecoveryWrap(
  tx: Tx,
  keyring: Keyring,
  userId: string,
  wrap: { recoveryWrappedMk: Buffer; recoveryIv: Buffer; keyCheck?: string },
) {
  const row = await requireRow(tx, userId, true);
  await requireKeyCheck(tx, keyring, row, wrap.keyCheck);
  const recoverySetAt = new Date();
  await tx
    .update(encryptionVaults)
    .set({ recoveryWrappedMk: wrap.recoveryWrappedMk, recoveryIv: wrap.recoveryIv, recoverySetAt })
    .where(eq(encryptionVaults.userId, userId));
  return { replaced: row.recoveryWrappedMk !== null, recoverySetAt };
}

export async function clearRecoveryWrap(tx: Tx, userId: string) {
  const row = await requireRow(tx, userId, true);
  if (row.zeroKnowledge) throw VAULT_ERRORS.zkActive();
  if (row.recoveryWrappedMk === null) return { removed: false };
  await tx
    .update(encryptionVaults)
    .set({ recoveryWrappedMk: null, recoveryIv: null, recoverySetAt: null })
    .where(eq(encryptionVaults.userId, userId));
  return { removed: true };
}

/** Drops the server-side wrap: from now on only the client's recovery secret opens the MK. */
export async function enableZeroKnowledge(tx: Tx, keyring: Keyring, userId: string, keyCheck: string | undefined) {
  const row = await requireRow(tx, userId, true);
  if (row.zeroKnowledge) return { changed: false };
  if (row.recoveryWrappedMk === null) throw VAULT_ERRORS.recoveryWrapMissing();
  await requireKeyCheck(tx, keyring, row, keyCheck);
  await tx
    .update(encryptionVaults)
    .set({ zeroKnowledge: true, wrappedMk: null, wrapIv: null, kekId: null })
    .where(eq(encryptionVaults.userId, userId));
  return { changed: true };
}

/** Takes the MK the client just unwrapped with its recovery secret and KEK-wraps it again. */
export async function disableZeroKnowledge(tx: Tx, keyring: Keyring, userId: string, masterKey: Buffer) {
  const row = await requireRow(tx, userId, true);
  // Outside ZK mode the server already holds the MK: never replace it with whatever a client sends.
  if (!row.zeroKnowledge) return { changed: false };
  // Only this vault's MK may come back: a token alone must not make the server adopt another key. A vault
  // from before check values existed has none to compare with; it records the check value of the key it gets.
  const keyCheck = keyCheckOf(masterKey);
  if (row.keyCheck !== null && !keyCheckMatches(row.keyCheck, toBase64(keyCheck))) throw VAULT_ERRORS.masterKeyMismatch();
  const wrap = wrapMasterKey(keyring, userId, masterKey);
  await tx
    .update(encryptionVaults)
    .set({
      zeroKnowledge: false,
      wrappedMk: wrap.wrappedMk,
      wrapIv: wrap.iv,
      kekId: wrap.kekId,
      formatVersion: wrap.formatVersion,
      keyCheck,
    })
    .where(eq(encryptionVaults.userId, userId));
  return { changed: true };
}

/** For the GDPR view (internal API): metadata only, never key material. */
export async function vaultMetadata(tx: Tx, userId: string) {
  const [row] = await tx
    .select({
      kekId: encryptionVaults.kekId,
      formatVersion: encryptionVaults.formatVersion,
      hasRecoveryWrap: sql<boolean>`${encryptionVaults.recoveryWrappedMk} is not null`,
      recoverySetAt: encryptionVaults.recoverySetAt,
      zeroKnowledge: encryptionVaults.zeroKnowledge,
      createdAt: encryptionVaults.createdAt,
      rotatedAt: encryptionVaults.rotatedAt,
    })
    .from(encryptionVaults)
    .where(eq(encryptionVaults.userId, userId));
  const [audit] = await tx.select({ n: count() }).from(encryptionVaultAudit).where(eq(encryptionVaultAudit.userId, userId));
  return {
    userId,
    vaultExists: row !== undefined,
    zeroKnowledge: row?.zeroKnowledge ?? false,
    hasRecoveryWrap: row?.hasRecoveryWrap ?? false,
    recoverySetAt: row?.recoverySetAt?.toISOString() ?? null,
    kekId: row?.kekId ?? null,
    formatVersion: row?.formatVersion ?? null,
    createdAt: row?.createdAt.toISOString() ?? null,
    rotatedAt: row?.rotatedAt?.toISOString() ?? null,
    auditEntries: audit?.n ?? 0,
  };
}
