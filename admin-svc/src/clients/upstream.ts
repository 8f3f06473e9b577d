import { AppError, serviceUrls } from '@mana/shared';
import { ADMIN_ERRORS } from '../domain/errors';

export interface UpstreamOptions {
  /** e.g. `auth-svc` (named in errors). */
  name: string;
  /** `<NAME>_SVC_URL`: one base URL or a comma-separated list of instances (failover on a refused connection). */
  urls: string;
  serviceKey: string;
  timeoutMs: number;
}

export type UpstreamCall = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/**
 * Calls another service's internal API with the service key. Unreachable or slow → 503 SOURCE_UNAVAILABLE;
 * a 4xx answer keeps its code (USER_NOT_FOUND, LAST_ADMIN…) so the admin sees why; a 5xx is SOURCE_UNAVAILABLE too.
 */
export function upstream(opts: UpstreamOptions): UpstreamCall {
  const target = serviceUrls(opts.urls);
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await target.fetch(path, {
        method,
        headers: {
          'x-service-key': opts.serviceKey,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
    } catch {
      throw ADMIN_ERRORS.sourceUnavailable(opts.name);
    }
    let text: string;
    try {
      text = await res.text();
    } catch {
      throw ADMIN_ERRORS.sourceUnavailable(opts.name);
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = {};
    }
    if (res.ok) return parsed as T;
    if (res.status === 404) throw ADMIN_ERRORS.userNotFound();
    const code = errorCode(parsed);
    if (code && res.status >= 400 && res.status < 500 && res.status !== 401 && res.status !== 403) {
      const message =
        typeof parsed === 'object' && parsed !== null && 'message' in parsed && typeof parsed.message === 'string'
          ? parsed.message
          : `${opts.name} refused`;
      throw new AppError(code, res.status, message);
    }
    // A 5xx, or a 401/403 (the service keys of the deployments differ): the source cannot answer us now.
    throw ADMIN_ERRORS.sourceUnavailable(opts.name);
  };
}

function errorCode(body: unknown): string | undefined {
  return typeof body === 'object' && body !== null && 'error' in body && typeof body.error === 'string' ? body.error : undefined;
}
