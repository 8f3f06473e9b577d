import { createHmac } from 'node:crypto';
import { APIError } from 'better-auth/api';
import { constantTimeEqual, makeSignature, symmetricEncrypt } from 'better-auth/crypto';
import { resolveSigningKey, signJWT, type JwtOptions } from 'better-auth/plugins/jwt';
import { AppError, ERRORS } from '@mana/shared';
import type { Auth } from './auth';

/**
 * Everything auth-svc does with Better Auth beyond its typed `auth.api` calls: its cookie names and
 * signed session cookie, the Set-Cookie lines it answers with, its error type, calls through its HTTP
 * handler, and the signature the OAuth provider puts on the login page's query. These lean on Better
 * Auth's internals (`$context`, cookie format, HMAC scheme), so a Better Auth upgrade that changes
 * them breaks here, and `test/better-auth-adapter.test.ts` says so.
 */

/** Better Auth's secret: signs its cookies and the provider's login-page query. */
export async function authSecret(auth: Auth): Promise<string> {
  return (await auth.$context).secret;
}

/** A JWT signing key's private half as the jwt plugin stores it in `jwks.private_key` (encrypted with its secret). */
export async function sealJwkPrivateKey(auth: Auth, privateWebKey: unknown): Promise<string> {
  const c = await auth.$context;
  return JSON.stringify(await symmetricEncrypt({ key: c.secretConfig, data: JSON.stringify(privateWebKey) }));
}

/** A JWT signing key as the jwt plugin resolves it: read, decrypted and imported, with its `kid` and `alg`. */
export type SigningKey = NonNullable<Awaited<ReturnType<typeof resolveSigningKey>>>;

type JwtPayload = Parameters<typeof signJWT>[1]['payload'];

/**
 * The jwt plugin's own signing functions outside a request: they read only `ctx.context` (adapter, secret,
 * options, logger), which is the instance's auth context.
 */
async function jwtPlugin(auth: Auth): Promise<{ ctx: Parameters<typeof signJWT>[0]; options: JwtOptions | undefined }> {
  const context = await auth.$context;
  const options: JwtOptions | undefined = context.getPlugin('jwt')?.options;
  return { ctx: { context } as unknown as Parameters<typeof signJWT>[0], options };
}

/** The key the jwt plugin signs with now (its `resolveSigningKey`: the newest live key; the first one is minted). */
export async function currentSigningKey(auth: Auth): Promise<SigningKey> {
  const { ctx, options } = await jwtPlugin(auth);
  const key = await resolveSigningKey(ctx, options);
  if (!key) throw new Error('the jwt plugin signs through a custom callback: there is no key to resolve');
  return key;
}

/**
 * Signs like the plugin's `signJWT` endpoint (same header, `iss`, `aud`, `exp`), with a key resolved before:
 * the plugin's documented way to skip the key's database read, decryption and import on every token.
 */
export async function signJwtWithKey(auth: Auth, key: SigningKey, payload: JwtPayload): Promise<string> {
  const { ctx, options } = await jwtPlugin(auth);
  return signJWT(ctx, { options, payload, resolvedKey: key });
}

/** Name of one of Better Auth's plugin cookies (prefix and `__Secure-` as configured). */
export async function authCookieName(auth: Auth, name: 'two_factor' | 'trust_device'): Promise<string> {
  return (await auth.$context).createAuthCookie(name).name;
}

/** The `name=value` pair of a cookie in Set-Cookie lines, unless it is being cleared. */
export function cookiePair(setCookies: string[], name: string): string | undefined {
  const line = setCookies.find((c) => c.startsWith(`${name}=`) && !/max-age=0/i.test(c));
  const pair = line?.split(';')[0];
  return pair && pair.length > name.length + 1 ? pair : undefined;
}

/** The value of a cookie in Set-Cookie lines (as sent back in a Cookie header), unless it is being cleared. */
export function cookieValue(setCookies: string[], name: string): string | undefined {
  const pair = cookiePair(setCookies, name);
  return pair?.slice(pair.indexOf('=') + 1);
}

/**
 * A session presented as Better Auth's signed session cookie (`name=token.HMAC`), exactly what a
 * browser holding that session sends: lets bearer clients use Better Auth's cookie-only endpoints.
 */
export async function signedSessionCookie(auth: Auth, sessionToken: string): Promise<string> {
  const c = await auth.$context;
  const signature = createHmac('sha256', c.secret).update(sessionToken).digest('base64');
  return `${c.authCookies.sessionToken.name}=${encodeURIComponent(`${sessionToken}.${signature}`)}`;
}

/** The session token of the session cookie Better Auth set in these Set-Cookie lines, if any. */
export async function sessionTokenOf(auth: Auth, setCookies: string[]): Promise<string | undefined> {
  const c = await auth.$context;
  const value = cookieValue(setCookies, c.authCookies.sessionToken.name);
  const signed = value ? decodeURIComponent(value) : '';
  const token = signed.slice(0, signed.lastIndexOf('.'));
  return token || undefined;
}

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

export interface EndpointAnswer {
  status: number;
  /** The JSON answer ({} when it was empty or not an object). */
  body: Record<string, unknown>;
  setCookies: string[];
}

/**
 * POSTs to one of Better Auth's endpoints through its own HTTP handler, exactly as a browser's fetch
 * would (cookies, hooks, plugins: the provider's continuation, two-factor, lockout). `headers` carry
 * what the browser sent (cookie, user agent, language); content type, accept and origin are set here.
 */
export async function callEndpoint(
  auth: Auth,
  baseUrl: string,
  path: string,
  body: Record<string, unknown>,
  headers: Headers,
): Promise<EndpointAnswer> {
  const base = baseUrl.replace(/\/$/, '');
  const h = new Headers(headers);
  h.set('content-type', 'application/json');
  h.set('accept', 'application/json');
  h.set('origin', new URL(base).origin);
  const answer = await auth.handler(new Request(`${base}/api/auth${path}`, { method: 'POST', headers: h, body: JSON.stringify(body) }));
  const text = await answer.text();
  let parsed: unknown = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = {};
  }
  return {
    status: answer.status,
    body: typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {},
    setCookies: answer.headers.getSetCookie(),
  };
}

/** The session of a browser's Cookie header, if its signed session cookie is valid and live. */
export async function sessionOfCookie(auth: Auth, cookieHeader: string | undefined) {
  if (!cookieHeader) return null;
  return auth.api.getSession({ headers: new Headers({ cookie: cookieHeader }) }).catch(() => null);
}

/**
 * The OAuth provider's signature over the query it hands the login page (`sig` over the other
 * parameters, sorted), checked the way the provider does, without its expiry.
 */
export async function providerQuerySigned(oauthQuery: string, secret: string): Promise<boolean> {
  const params = new URLSearchParams(oauthQuery);
  const sigs = params.getAll('sig');
  if (sigs.length !== 1 || !sigs[0]) return false;
  params.delete('sig');
  const canonical = new URLSearchParams(
    [...params.entries()].sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0)),
  );
  return constantTimeEqual(sigs[0], await makeSignature(canonical.toString(), secret));
}
