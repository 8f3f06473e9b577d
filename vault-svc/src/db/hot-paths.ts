import pg from 'pg';
import { VAULT_ERRORS } from '../domain/errors';
import type { Keyring } from '../domain/kek';
import { keyResponse, storeMissingKeyCheck, type KeyResponse, type VaultStatus } from '../domain/vault';
import { scopeStatement, withUserScope, type VaultDb } from './scope';

// The two routes every client calls on every sign-in, each in one round trip: several statements in one
// simple-query message (values as literals via pg's escapeLiteral) share one implicit transaction, and the
// first of them enters the user scope, so RLS applies exactly as on every other path.

const lit = (value: string | null): string => (value === null ? 'NULL' : pg.escapeLiteral(value));

interface StatusRow {
  has_recovery_wrap: boolean;
  zero_knowledge: boolean;
  recovery_set_at: Date | null;
}

/** The caller's vault row (or undefined): scope and SELECT in one simple query, one implicit transaction. */
async function readOwnRow<Row extends pg.QueryResultRow>(db: VaultDb, userId: string, columns: string): Promise<Row | undefined> {
  const text = `${scopeStatement(userId)}; SELECT ${columns} FROM vault.encryption_vaults WHERE user_id = ${lit(userId)}`;
  const results = (await db.$client.query(text)) as unknown as pg.QueryResult<Row>[];
  return results[1]?.rows[0];
}

/** GET /status in one round trip. */
export async function readStatusOneTrip(db: VaultDb, userId: string): Promise<VaultStatus> {
  const row = await readOwnRow<StatusRow>(
    db,
    userId,
    'recovery_wrapped_mk IS NOT NULL AS has_recovery_wrap, zero_knowledge, recovery_set_at',
  );
  return {
    vaultExists: row !== undefined,
    hasRecoveryWrap: row?.has_recovery_wrap ?? false,
    zeroKnowledge: row?.zero_knowledge ?? false,
    recoverySetAt: row?.recovery_set_at?.toISOString() ?? null,
  };
}

interface KeyRow {
  wrapped_mk: Buffer | null;
  wrap_iv: Buffer | null;
  kek_id: string | null;
  format_version: number;
  zero_knowledge: boolean;
  recovery_wrapped_mk: Buffer | null;
  recovery_iv: Buffer | null;
  key_check: Buffer | null;
}

/**
 * The read half of GET /key in one round trip (scope + read, one implicit read-only transaction). The audit
 * row is written by the FetchAuditBatcher before the key leaves the service.
 */
export async function readKeyOneTrip(db: VaultDb, keyring: Keyring, userId: string): Promise<KeyResponse> {
  const row = await readOwnRow<KeyRow>(
    db,
    userId,
    'wrapped_mk, wrap_iv, kek_id, format_version, zero_knowledge, recovery_wrapped_mk, recovery_iv, key_check',
  );
  if (!row) throw VAULT_ERRORS.notFound();
  const key = keyResponse(keyring, {
    userId,
    wrappedMk: row.wrapped_mk,
    wrapIv: row.wrap_iv,
    kekId: row.kek_id,
    formatVersion: row.format_version,
    zeroKnowledge: row.zero_knowledge,
    recoveryWrappedMk: row.recovery_wrapped_mk,
    recoveryIv: row.recovery_iv,
    keyCheck: row.key_check,
  });
  // Once per vault created before check values existed: an extra write, off the usual one-trip path.
  if (row.key_check === null && 'masterKey' in key)
    await withUserScope(db, userId, (tx) => storeMissingKeyCheck(tx, { userId, keyCheck: null }, key));
  return key;
}
