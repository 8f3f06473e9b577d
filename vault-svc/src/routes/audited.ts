import type { Request } from 'express';
import type { Logger } from 'pino';
import { AppError, ERRORS, toAppError } from '@mana/shared';
import { appendAudit } from '../db/audit';
import type { AuditAction } from '../db/schema';
import { isUserId, withUserScope, type Tx, type VaultDb } from '../db/scope';
import { VAULT_ERRORS } from '../domain/errors';
import { VaultCryptoError } from '../domain/kek';

export interface AuditedDeps {
  db: VaultDb;
  logger: Logger;
}

export interface Outcome<T> {
  body: T;
  /** Small, non-secret detail for the audit row (never key material). */
  context?: Record<string, unknown>;
}

/** IP (X-Forwarded-For as far as `trust proxy` allows) and user agent of the caller. */
export function requestMeta(req: Request): { ip: string | null; userAgent: string | null } {
  // Stripping control characters from the header is the point of this pattern.
  // eslint-disable-next-line no-control-regex
  const controls = /[\u0000-\u001f\u007f]/g;
  const userAgent = req.get('user-agent')?.replace(controls, '').slice(0, 512) || null;
  return { ip: req.ip ?? null, userAgent };
}

/** The user is the verified token's subject; nothing else in the request can name a user. */
export function callerId(req: Request): string {
  const sub = req.auth?.sub;
  if (!sub) throw ERRORS.tokenMissing();
  // A subject no user can have (control characters, the erased: namespace).
  if (!isUserId(sub)) throw ERRORS.tokenInvalid();
  return sub;
}

function asAppError(err: unknown, logger: Logger): AppError {
  if (err instanceof AppError) return err;
  // A wrap that does not open is a server-side integrity problem (wrong KEK, tampered row): 500, no detail.
  if (err instanceof VaultCryptoError) {
    logger.error({ code: err.code, err: err.message }, 'vault crypto failure');
    return new AppError('INTERNAL_ERROR', 500, 'Internal server error', { cause: err });
  }
  // A database outage is a 503 (toAppError), anything else unknown an opaque 500.
  return toAppError(err);
}

/**
 * Runs one vault action for the caller in their user scope and writes its audit row: in the same
 * transaction when it succeeds, in a transaction of its own when it fails (the first one rolled back),
 * so probing leaves a trail too. Rows are written only while the vault exists (db/audit.ts): an action whose
 * vault was erased under it (only /init reads it without holding it FOR NO KEY UPDATE) is a 404 like one after.
 */
export async function audited<T>(deps: AuditedDeps, req: Request, action: AuditAction, work: (tx: Tx) => Promise<Outcome<T>>): Promise<T> {
  const userId = callerId(req);
  const meta = requestMeta(req);
  try {
    return await withUserScope(deps.db, userId, async (tx) => {
      const { body, context } = await work(tx);
      if (!(await appendAudit(tx, { userId, action, status: 200, ...meta, context }))) throw VAULT_ERRORS.notFound();
      return body;
    });
  } catch (err) {
    throw await auditFailure(deps, req, action, err);
  }
}

/**
 * Writes the audit row of a failed action in a transaction of its own (none when the user has no vault: an erased
 * user must not be named again); returns the error to answer with.
 */
export async function auditFailure(deps: AuditedDeps, req: Request, action: AuditAction, err: unknown): Promise<AppError> {
  const failure = asAppError(err, req.log ?? deps.logger);
  const userId = callerId(req);
  // The database is not there: the row cannot be written, and trying would only make the 503 slower.
  if (failure.code === 'SERVICE_UNAVAILABLE') return failure;
  try {
    await withUserScope(deps.db, userId, (tx) =>
      appendAudit(tx, { userId, action, status: failure.status, ...requestMeta(req), context: { error: failure.code } }),
    );
  } catch (auditErr) {
    (req.log ?? deps.logger).error({ err: (auditErr as Error).message, action }, 'could not write failure audit row');
  }
  return failure;
}
