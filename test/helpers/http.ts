/** A fetch that keeps cookies like a browser would (one jar per instance) and sends an Origin. */
export interface CookieFetch {
  fetch: typeof fetch;
  cookies: Map<string, string>;
  cookieHeader: () => string;
}

export function cookieFetch(origin: string): CookieFetch {
  const cookies = new Map<string, string>();
  const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const wrapped = async (input: string | URL | Request, init: RequestInit = {}) => {
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    if (cookies.size > 0) headers.set('cookie', cookieHeader());
    if (!headers.has('origin')) headers.set('origin', origin);
    const res = await fetch(input, { ...init, headers });
    for (const c of res.headers.getSetCookie()) {
      const [pair = ''] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0/i.test(c) || value === '') cookies.delete(name);
      else cookies.set(name, value);
    }
    return res;
  };
  return { fetch: wrapped, cookies, cookieHeader };
}

export interface JsonResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

/** JSON request helper: `{ status, body, headers }`, never throws on 4xx/5xx. */
export async function call<T = Record<string, unknown>>(
  url: string,
  opts: { method?: string; body?: unknown; token?: string; headers?: Record<string, string>; fetch?: typeof fetch } = {},
): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await (opts.fetch ?? fetch)(url, {
    method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    redirect: 'manual',
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: body as T, headers: res.headers };
}
