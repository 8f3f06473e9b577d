import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import * as oidc from 'openid-client';
import { call, cookieFetch, type CookieFetch } from '../helpers/http';
import type { Stack } from '../helpers/stack';
import { strongPassword, uniqueEmail } from '../helpers/users';

export const SYNAPSE_SECRET = `synapse-secret-${randomBytes(16).toString('hex')}`;
export const WEBAPP_SECRET = `webapp-secret-${randomBytes(16).toString('hex')}`;
export const MATRIX_TEMPLATE = '@{localpart}:matrix.test';

/** What a relying party (e.g. Synapse) does: an authorization request with state, nonce and PKCE (S256). */
export async function authorizationRequest(
  config: oidc.Configuration,
  redirectUri: string,
  scope: string,
  extra: Record<string, string> = {},
) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  const checks = { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce };
  return { url: url.toString(), verifier, state, nonce, checks };
}

/** Environment for a stack with the Synapse client, a third-party confidential client and a public one. */
export function oidcEnv(redirects: { synapse: string; webapp: string; spa: string }): Record<string, string> {
  return {
    REQUIRE_EMAIL_VERIFICATION: 'false',
    SYNAPSE_OIDC_CLIENT_SECRET: SYNAPSE_SECRET,
    SYNAPSE_OIDC_REDIRECT_URI: redirects.synapse,
    MATRIX_USER_ID_TEMPLATE: MATRIX_TEMPLATE,
    OIDC_CLIENTS: JSON.stringify([
      {
        id: 'webapp',
        name: 'Web App',
        secret: WEBAPP_SECRET,
        redirectUris: [redirects.webapp],
        tokenEndpointAuthMethod: 'client_secret_post',
      },
      { id: 'spa', name: 'SPA', redirectUris: [redirects.spa], firstParty: true },
    ]),
    OIDC_SIGNUP_URL: 'https://app.mana.test/signup',
    OIDC_PASSWORD_RESET_URL: 'https://app.mana.test/forgot-password',
  };
}

export async function registerUser(s: Stack, email = uniqueEmail('oidc'), password = strongPassword(), name = 'Ada Lovelace') {
  const reg = await call<{ user: { id: string } }>(`${s.gatewayUrl}/api/v1/auth/register`, { body: { email, password, name } });
  expect(reg.status).toBe(201);
  return { email, password, userId: reg.body.user.id };
}

/** The value of a hidden input in server-rendered HTML. */
export function hiddenField(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m?.[1] && m?.[1] !== '') throw new Error(`no ${name} field in page`);
  return m[1]
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
}

/**
 * A navigation (no redirects followed). Node's fetch always sends `Sec-Fetch-Mode: cors`, so Better
 * Auth answers its redirects as `{ redirect: true, url }`; that is turned back into a 302 here.
 */
export async function navigate(cf: CookieFetch, url: string): Promise<Response> {
  const res = await cf.fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
  if (res.status === 200 && (res.headers.get('content-type') ?? '').includes('application/json')) {
    const body = (await res.json()) as { redirect?: boolean; url?: string };
    if (body.redirect && body.url) return new Response(null, { status: 302, headers: { location: body.url } });
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  }
  return res;
}

export async function postForm(cf: CookieFetch, url: string, fields: Record<string, string>, origin: string): Promise<Response> {
  return cf.fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', 'sec-fetch-mode': 'navigate', origin },
    body: new URLSearchParams(fields).toString(),
  });
}

export const locationOf = (res: Response, base: string) => new URL(res.headers.get('location') ?? '', base).toString();

/**
 * Runs an authorization request like a browser: authorize → login page → form post (→ consent)
 * until the provider redirects to `redirectPrefix`; returns that URL (code or error).
 */
export async function authorizeViaLoginForm(
  s: Stack,
  cf: CookieFetch,
  authorizeUrl: string,
  user: { email: string; password: string },
  redirectPrefix: string,
  opts: { consent?: 'accept' | 'deny' } = {},
): Promise<{ url: URL; sawLoginPage: boolean; sawConsent: boolean }> {
  const origin = new URL(s.gatewayUrl).origin;
  let res = await navigate(cf, authorizeUrl);
  let sawLoginPage = false;
  let sawConsent = false;
  for (let hop = 0; hop < 10; hop++) {
    if (res.status >= 300 && res.status < 400) {
      const next = locationOf(res, s.gatewayUrl);
      if (next.startsWith(redirectPrefix)) return { url: new URL(next), sawLoginPage, sawConsent };
      res = await navigate(cf, next);
      continue;
    }
    const html = await res.text();
    expect(res.status, html).toBe(200);
    const path = new URL(res.url || authorizeUrl).pathname;
    if (html.includes('action="/auth/login"')) {
      sawLoginPage = true;
      res = await postForm(
        cf,
        `${s.gatewayUrl}/auth/login`,
        { email: user.email, password: user.password, csrf: hiddenField(html, 'csrf'), oauth_query: hiddenField(html, 'oauth_query') },
        origin,
      );
    } else if (html.includes('action="/auth/consent"')) {
      sawConsent = true;
      res = await postForm(
        cf,
        `${s.gatewayUrl}/auth/consent`,
        {
          accept: opts.consent === 'deny' ? 'false' : 'true',
          csrf: hiddenField(html, 'csrf'),
          oauth_query: hiddenField(html, 'oauth_query'),
        },
        origin,
      );
    } else throw new Error(`unexpected page at ${path}: ${html.slice(0, 300)}`);
  }
  throw new Error('too many hops');
}

export const newBrowser = (s: Stack) => cookieFetch(new URL(s.gatewayUrl).origin);
