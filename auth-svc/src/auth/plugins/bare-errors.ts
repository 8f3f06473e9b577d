import type { BetterAuthPlugin } from 'better-auth';

/**
 * Better Auth's endpoints refuse some requests with a bare `ctx.error(status)` / `new APIError(status)` (no session on
 * `/get-access-token`, pre-login switched off on `/oauth2/public-client-prelogin`): a 4xx with an empty body, where every
 * other refusal is `{ code, message }` (found by test/e2e/fuzz.test.ts). Such an answer gets that shape, its code the
 * status's name (`UNAUTHORIZED`, `BAD_REQUEST`); headers (WWW-Authenticate, cookies) are kept.
 */
const STATUS_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'UNPROCESSABLE_ENTITY',
  429: 'TOO_MANY_REQUESTS',
};

export function bareErrors() {
  return {
    id: 'mana-bare-errors',
    onResponse: async (response: Response) => {
      if (response.status < 400 || response.status >= 500 || (await response.clone().text()) !== '') return;
      const code = STATUS_CODES[response.status] ?? 'BAD_REQUEST';
      const headers = new Headers(response.headers);
      headers.set('content-type', 'application/json');
      headers.delete('content-length');
      const message = code.charAt(0) + code.slice(1).toLowerCase().replace(/_/g, ' ');
      return { response: new Response(JSON.stringify({ code, message }), { status: response.status, headers }) };
    },
  } satisfies BetterAuthPlugin;
}
