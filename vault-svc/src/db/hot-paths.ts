import pg from 'pg';
import { VAULT_ERRORS } from '../domain/errors';
import type { Keyring } from '../domain/kek';
import { keyResponse, type KeyResponse, type VaultStatus } from '../domain/vault';
import { scopeStatement, type VaultDb } from './scope';

// The two routes every client calls on every sign-in, written as few round trips as PostgreSQL allows:
// several statements in one simple-query message (values as literals via pg's escapeLiteral), still
// entering the user scope first so RLS applies exactly as on every other path. Same semantics as
// readStatus / fetchKey + appendAudit in the general path (the e2e tests cover both through the routes).

const lit = (value: string | null): string => (value === null ? 'NULL' : pg.escapeLiteral(value));

interface StatusRow {
  has_recovery_wrap: boolean;
  zero_knowledge: boolean;
  recovery_set_at: Date | null;
}

/** GET /status in one round trip: the statements of one simple query share one implicit transaction. */
export async function readStatusOneTrip(db: VaultDb, userId: string): Promise<VaultStatus> {
  const text =
    `${scopeStatement(userId)}; ` +
    'SELECT recovery_wrapped_mk IS NOT NULL AS has_recovery_wrap, zero_knowledge, recovery_set_at ' +
    `FROM vault.encryption_vaults WHERE user_id = ${lit(userId)}`;
  const results = (await db.$client.query(text)) as unknown as pg.QueryResult<StatusRow>[];
  const row = results[1]?.rows[0];
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
}

export interface FetchMeta {
  ip: string | null;
  userAgent: string | null;
}

/**
 * GET /key in two round trips: BEGIN + scope + read, then the audit INSERT + COMMIT. Any failure rolls
 * back (the caller writes the failure's audit row in a transaction of its own).
 */
export async function fetchKeyTwoTrips(db: VaultDb, keyring: Keyring, userId: string, meta: FetchMeta, durable: boolean): Promise<KeyResponse> {
  const read =
    `BEGIN; ${scopeStatement(userId, { durable })}; ` +
    'SELECT wrapped_mk, wrap_iv, kek_id, format_version, zero_knowledge, recovery_wrapped_mk, recovery_iv ' +
    `FROM vault.encryption_vaults WHERE user_id = ${lit(userId)}`;
  const client = await db.$client.connect();
  let broken: Error | undefined;
  try {
    const results = (await client.query(read)) as unknown as pg.QueryResult<KeyRow>[];
    const row = results[2]?.rows[0];
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
    });
    const context = JSON.stringify('kekId' in key ? { kekId: key.kekId } : { zeroKnowledge: true });
    await client.query(
      'INSERT INTO vault.encryption_vault_audit (user_id, action, status, ip, user_agent, context) ' +
        `VALUES (${lit(userId)}, 'fetch', 200, ${lit(meta.ip)}, ${lit(meta.userAgent)}, ${lit(context)}::jsonb); COMMIT`,
    );
    return key;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackErr) {
      broken = rollbackErr as Error;
    }
    throw err;
  } finally {
    client.release(broken);
  }
}
