import { causeChain } from '../errors';
/**
 * Another service's instances, as `<NAME>_SVC_URL` names them: one base URL or a comma-separated list
 * (`http://10.0.0.5:3105,http://10.0.0.6:3105`). Every service-to-service call goes through one of these,
 * so two instances of a service behind one variable work the same way for the gateway and for the services.
 */

/** The base URLs of one `<NAME>_SVC_URL` value (trimmed, no trailing slash, empties dropped). */
export function parseServiceUrls(value: string | readonly string[]): string[] {
  const list = typeof value === 'string' ? value.split(',') : value;
  return list.map((u) => u.trim().replace(/\/+$/, '')).filter((u) => u.length > 0);
}

/**
 * Whether a failed `fetch` never reached the instance: the connection was refused (stopped or restarting)
 * or the host is unknown. Only then is trying the next instance safe for a request that is not idempotent —
 * a reset or a timeout may come after the instance acted on it.
 */
export function isConnectionRefused(err: unknown): boolean {
  for (const { code } of causeChain(err, 4)) {
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return true;
  }
  return false;
}

export interface ServiceUrls {
  /** The configured instances, in order. */
  readonly urls: readonly string[];
  /**
   * `fetch(<instance><path>)`, starting at the next instance (round robin) and moving on to the following one
   * when the connection is refused. Any other failure (timeout, reset) and every HTTP answer are the caller's.
   */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

export function serviceUrls(value: string | readonly string[]): ServiceUrls {
  const urls = parseServiceUrls(value);
  if (urls.length === 0) throw new Error('a service URL list needs at least one URL');
  let next = 0;
  return {
    urls,
    async fetch(path, init) {
      const start = next;
      next = (next + 1) % urls.length;
      let lastErr: unknown;
      for (let i = 0; i < urls.length; i++) {
        try {
          return await fetch(`${urls[(start + i) % urls.length]}${path}`, init);
        } catch (err) {
          if (!isConnectionRefused(err)) throw err;
          lastErr = err;
        }
      }
      throw lastErr;
    },
  };
}
