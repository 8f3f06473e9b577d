import { APIError } from 'better-auth/api';
import { AppError, ERRORS } from '@mana/shared';

/** Better Auth's error code and status, when `err` is one of its API errors. */
export function betterAuthError(err: unknown): { status: number; code: string; message: string } | undefined {
  if (!(err instanceof APIError)) return undefined;
  const body: unknown = err.body;
  const code = typeof body === 'object' && body !== null && 'code' in body && typeof body.code === 'string' ? body.code : 'AUTH_ERROR';
  return { status: err.statusCode, code, message: err.message };
}

/** Translates a Better Auth error into the /api/v1 error shape; 5xx keep their detail private. */
export function toV1Error(err: unknown): AppError {
  const e = betterAuthError(err);
  if (!e) return err instanceof AppError ? err : ERRORS.internal(err);
  if (e.status >= 500) return ERRORS.internal(err);
  return new AppError(e.code, e.status, e.message);
}
