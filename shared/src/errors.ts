import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { ZodError } from 'zod';

export interface AppErrorOptions {
  /** Whether `message` may be shown to the client. 5xx errors default to false. */
  expose?: boolean;
  /** Extra, client-safe detail (e.g. the failing fields of a validation error). */
  details?: unknown;
  headers?: Record<string, string>;
  cause?: unknown;
}

/** The one error type of the project: a stable machine `code`, an HTTP `status` and a public message. */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly expose: boolean;
  readonly details?: unknown;
  readonly headers?: Record<string, string>;

  constructor(code: string, status: number, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.expose = options.expose ?? status < 500;
    this.details = options.details;
    this.headers = options.headers;
  }
}

export interface FieldIssue {
  path: string;
  message: string;
}

export function zodIssues(error: ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(root)',
    message: issue.message,
  }));
}

/** Typed error factory: callers switch on `code`, never on message text. */
export const ERRORS = {
  validation: (where: string, issues: FieldIssue[]) =>
    new AppError('VALIDATION_FAILED', 400, `Invalid ${where}: ${issues.map((i) => `${i.path} (${i.message})`).join('; ')}`, {
      details: issues,
    }),
  invalidJson: () => new AppError('INVALID_JSON', 400, 'Request body is not valid JSON'),
  payloadTooLarge: () => new AppError('PAYLOAD_TOO_LARGE', 413, 'Request body is too large'),
  notFound: (what = 'Route') => new AppError('NOT_FOUND', 404, `${what} not found`),
  tokenMissing: () => new AppError('TOKEN_MISSING', 401, 'A bearer token is required'),
  tokenInvalid: () => new AppError('TOKEN_INVALID', 401, 'The bearer token is invalid'),
  tokenExpired: () => new AppError('TOKEN_EXPIRED', 401, 'The bearer token has expired'),
  tokenRevoked: () => new AppError('TOKEN_REVOKED', 401, 'The session of this token has ended'),
  forbidden: (message = 'You are not allowed to do this') => new AppError('FORBIDDEN', 403, message),
  /** Step-up authentication: the session must have signed in or re-authenticated recently (POST /api/v1/auth/reauth). */
  reauthRequired: () =>
    new AppError('REAUTH_REQUIRED', 401, 'Confirm your password or a second-factor code first (POST /api/v1/auth/reauth)'),
  serviceKeyMissing: () => new AppError('SERVICE_KEY_MISSING', 401, 'X-Service-Key header is required'),
  serviceKeyInvalid: () => new AppError('SERVICE_KEY_INVALID', 403, 'X-Service-Key is not valid'),
  rateLimited: (retryAfterSeconds: number) =>
    new AppError('RATE_LIMITED', 429, 'Too many requests, slow down', {
      headers: { 'Retry-After': String(retryAfterSeconds) },
    }),
  conflict: (code: string, message: string) => new AppError(code, 409, message),
  unavailable: (message = 'Service unavailable') => new AppError('SERVICE_UNAVAILABLE', 503, message, { expose: true }),
  /** An unexpected failure: an opaque 500 — or the 503 of a database outage when that is what `cause` is. */
  internal: (cause?: unknown) =>
    isDatabaseUnavailable(cause) ? databaseUnavailable(cause) : new AppError('INTERNAL_ERROR', 500, 'Internal server error', { cause }),
} as const;

export interface ErrorBody {
  error: string;
  message: string;
  requestId: string | undefined;
  details?: unknown;
}

/**
 * SQLSTATEs and socket errors that mean "the database is not there right now" (restarting, connection
 * terminated by an operator, refused, pool exhausted), not a bug: connection exception (class 08), admin or
 * crash shutdown, cannot connect now, too many connections.
 */
const DB_UNAVAILABLE_CODES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '53300',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
/**
 * The same outages by their text, for errors that lost their code on the way (a library that re-threw the
 * message only): pg's own connection errors and PostgreSQL's refusals when its connection slots are used up.
 */
const DB_UNAVAILABLE_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|sorry, too many clients already|too many connections for (role|database)|remaining connection slots are reserved)/;

/**
 * `err` and its causes, the first `depth` of them that are objects: drizzle wraps the driver's error, fetch the
 * socket's, and the code that says what happened is on the wrapped one.
 */
export function* causeChain(err: unknown, depth = 5): Generator<{ code?: unknown; message?: unknown; constraint?: unknown }> {
  for (let e: unknown = err, i = 0; e !== null && typeof e === 'object' && i < depth; e = (e as { cause?: unknown }).cause, i++) {
    yield e;
  }
}

/** Whether `err` (or one of its causes: drizzle wraps the driver's error) says the database is unreachable. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (const { code, message } of causeChain(err)) {
    if (typeof code === 'string' && (DB_UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
    if (typeof message === 'string' && DB_UNAVAILABLE_MESSAGES.test(message)) return true;
  }
  return false;
}

/**
 * A database outage as the client sees it: 503, retry shortly (the pool reconnects by itself). `ERRORS.internal`
 * gives it for an outage too, so a route's own catch or an adapter that wraps whatever it caught (vault's audited
 * actions, auth-svc's Better Auth translation) still answers an outage with a 503.
 */
function databaseUnavailable(cause: unknown): AppError {
  return new AppError('SERVICE_UNAVAILABLE', 503, 'Service unavailable, try again shortly', {
    expose: true,
    cause,
    headers: { 'retry-after': '1' },
  });
}

/**
 * Normalises anything thrown into an AppError; a database outage becomes 503 SERVICE_UNAVAILABLE (the
 * client may retry; the pool reconnects by itself), anything else unknown an opaque 500.
 */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isDatabaseUnavailable(err)) return databaseUnavailable(err);
  const e = err as { type?: string; status?: number; statusCode?: number } | undefined;
  // body-parser / raw-body errors carry a `type`
  if (e?.type === 'entity.parse.failed') return ERRORS.invalidJson();
  if (e?.type === 'entity.too.large') return ERRORS.payloadTooLarge();
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported')
    return new AppError('UNSUPPORTED_ENCODING', 415, 'Unsupported content encoding');
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new AppError('BAD_REQUEST', status, 'Bad request');
  return ERRORS.internal(err);
}

export function errorBody(err: AppError, requestId: string | undefined): ErrorBody {
  const body: ErrorBody = {
    error: err.code,
    message: err.expose ? err.message : 'Internal server error',
    requestId,
  };
  if (err.expose && err.details !== undefined) body.details = err.details;
  return body;
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(ERRORS.notFound(`Route ${req.method} ${req.path}`));
};

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const appError = toAppError(err);
  const log = req.log;
  if (appError.status >= 500) log?.error({ err }, 'request failed');
  else log?.debug({ code: appError.code }, 'request rejected');
  if (res.headersSent) {
    res.end();
    return;
  }
  if (appError.headers) res.set(appError.headers);
  res.status(appError.status).json(errorBody(appError, req.id));
};
