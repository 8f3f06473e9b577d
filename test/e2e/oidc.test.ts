import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { createBus, createEvent, createLogger } from '@mana/shared';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startStack, type Stack } from '../helpers/stack';
import { call } from '../helpers/http';
import {
  MATRIX_TEMPLATE,
  SYNAPSE_SECRET,
  WEBAPP_SECRET,
  authorizationRequest,
  authorizeViaLoginForm,
  hiddenField,
  navigate,
  newBrowser,
  oidcEnv,
  postForm,
  registerUser,
} from './oidc-helpers';

const SYNAPSE_CB = 'https://matrix.test/_synapse/client/oidc/callback';
const WEBAPP_CB = 'https://webapp.test/callback';
const SPA_CB = 'http://127.0.0.1:9/spa/callback';

let s: Stack;
let issuer: URL;
let synapse: oidc.Configuration;
let user: { email: string; password: string; userId: string };

const insecure = { execute: [oidc.allowInsecureRequests] };

const start = (config: oidc.Configuration, extra: Record<string, string> = {}, redirectUri = SYNAPSE_CB) =>
  authorizationRequest(config, redirectUri, 'openid profile email offline_access', extra);

/** Signs in through the login form and returns the callback URL with the code. */
async function codeFor(config: oidc.Configuration, redirectUri = SYNAPSE_CB) {
  const req = await start(config, {}, redirectUri);
  const { url } = await authorizeViaLoginForm(s, newBrowser(s), req.url, user, redirectUri);
  return { ...req, callback: url };
}

beforeAll(async () => {
  s = await startStack({ env: oidcEnv({ synapse: SYNAPSE_CB, webapp: WEBAPP_CB, spa: SPA_CB }) });
  issuer = new URL(s.gatewayUrl);
  synapse = await oidc.discovery(issuer, 'synapse', undefined, oidc.ClientSecretBasic(SYNAPSE_SECRET), insecure);
  user = await registerUser(s);
}, 60_000);

afterAll(async () => {
  await s?.close();
});

describe('discovery', () => {
  test('the issuer is BASE_URL and every endpoint is reachable through the gateway', async () => {
    const meta = synapse.serverMetadata();
    expect(meta.issuer).toBe(s.gatewayUrl);
    expect(meta.id_token_signing_alg_values_supported).toEqual(['EdDSA']);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.scopes_supported).toEqual(expect.arrayContaining(['openid', 'profile', 'email', 'offline_access']));
    expect(meta.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post']));
    expect(meta.claims_supported).toEqual(expect.arrayContaining(['sub', 'email', 'email_verified', 'name', 'preferred_username']));
    for (const key of [
      'authorization_endpoint',
      'token_endpoint',
      'userinfo_endpoint',
      'revocation_endpoint',
      'end_session_endpoint',
      'jwks_uri',
    ] as const)
      expect(String(meta[key]).startsWith(`${s.gatewayUrl}/api/auth/`), key).toBe(true);
    const jwks = await call<{ keys: Array<{ alg?: string; crv?: string }> }>(String(meta.jwks_uri));
    expect(jwks.status).toBe(200);
    expect(jwks.body.keys.every((k) => k.crv === 'Ed25519')).toBe(true);
  });
});

describe('authorization code + PKCE through the login form (Synapse, first-party)', () => {
  let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

  test('login page → code → tokens; id_token verified (EdDSA, iss, aud, nonce); Matrix link recorded', async () => {
    const req = await start(synapse);
    const { url, sawLoginPage, sawConsent } = await authorizeViaLoginForm(s, newBrowser(s), req.url, user, SYNAPSE_CB);
    expect(sawLoginPage).toBe(true);
    expect(sawConsent).toBe(false);
    expect(url.searchParams.get('state')).toBe(req.state);
    expect(url.searchParams.get('iss')).toBe(s.gatewayUrl);
    tokens = await oidc.authorizationCodeGrant(synapse, url, req.checks);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.refresh_token).toBeTruthy();
    const idToken = tokens.id_token ?? '';
    expect(decodeProtectedHeader(idToken).alg).toBe('EdDSA');
    const jwks = createRemoteJWKSet(new URL(String(synapse.serverMetadata().jwks_uri)));
    const { payload } = await jwtVerify(idToken, jwks, { issuer: s.gatewayUrl, audience: 'synapse', algorithms: ['EdDSA'] });
    expect(payload.nonce).toBe(req.nonce);
    expect(payload.sub).toBe(user.userId);
    expect(payload.email).toBe(user.email);
    expect(payload.email_verified).toBe(false);
    expect(payload.name).toBe('Ada Lovelace');
    const localpart = user.email.split('@')[0];
    expect(payload.preferred_username).toBe(localpart);
    const link = await s.sql.query('select matrix_user_id from auth.matrix_links where user_id = $1', [user.userId]);
    expect(link.rows).toEqual([{ matrix_user_id: MATRIX_TEMPLATE.replace('{localpart}', localpart ?? '') }]);
  });

  test('userinfo answers the same claims for the access token', async () => {
    const info = await oidc.fetchUserInfo(synapse, tokens.access_token, user.userId);
    expect(info).toMatchObject({
      sub: user.userId,
      email: user.email,
      email_verified: false,
      name: 'Ada Lovelace',
      preferred_username: user.email.split('@')[0],
    });
  });

  test('refresh rotates: the new refresh token works, the spent one is invalid_grant', async () => {
    const first = tokens.refresh_token ?? '';
    const next = await oidc.refreshTokenGrant(synapse, first);
    expect(next.refresh_token).toBeTruthy();
    expect(next.refresh_token).not.toBe(first);
    expect(next.access_token).not.toBe(tokens.access_token);
    await expect(oidc.refreshTokenGrant(synapse, first)).rejects.toMatchObject({ error: 'invalid_grant' });
    tokens = next;
  });

  test('revocation: a revoked refresh token no longer refreshes', async () => {
    const fresh = await codeFor(synapse);
    const t = await oidc.authorizationCodeGrant(synapse, fresh.callback, fresh.checks);
    await oidc.tokenRevocation(synapse, t.refresh_token ?? '', { token_type_hint: 'refresh_token' });
    await expect(oidc.refreshTokenGrant(synapse, t.refresh_token ?? '')).rejects.toMatchObject({ error: 'invalid_grant' });
    await oidc.tokenRevocation(synapse, t.access_token, { token_type_hint: 'access_token' });
    await expect(oidc.fetchUserInfo(synapse, t.access_token, user.userId)).rejects.toBeTruthy();
  });

  test('a browser with an SSO session goes straight back with a code (no login page)', async () => {
    const browser = newBrowser(s);
    const first = await start(synapse);
    await authorizeViaLoginForm(s, browser, first.url, user, SYNAPSE_CB);
    const second = await start(synapse);
    const { url, sawLoginPage } = await authorizeViaLoginForm(s, browser, second.url, { email: 'unused', password: 'unused' }, SYNAPSE_CB);
    expect(sawLoginPage).toBe(false);
    expect(url.searchParams.get('code')).toBeTruthy();
  });
});

describe('other clients', () => {
  test('a third-party client (client_secret_post) sees the consent page; deny → access_denied, accept → code', async () => {
    const webapp = await oidc.discovery(issuer, 'webapp', undefined, oidc.ClientSecretPost(WEBAPP_SECRET), insecure);
    const browser = newBrowser(s);
    const denied = await start(webapp, {}, WEBAPP_CB);
    const d = await authorizeViaLoginForm(s, browser, denied.url, user, WEBAPP_CB, { consent: 'deny' });
    expect(d.sawConsent).toBe(true);
    expect(d.url.searchParams.get('error')).toBe('access_denied');
    const req = await start(webapp, {}, WEBAPP_CB);
    const a = await authorizeViaLoginForm(s, browser, req.url, user, WEBAPP_CB, { consent: 'accept' });
    expect(a.sawConsent).toBe(true);
    const t = await oidc.authorizationCodeGrant(webapp, a.url, req.checks);
    expect(t.claims()?.aud).toBe('webapp');
    // Consent is remembered.
    const again = await start(webapp, {}, WEBAPP_CB);
    expect((await authorizeViaLoginForm(s, browser, again.url, user, WEBAPP_CB)).sawConsent).toBe(false);
  });

  test('a public client must use PKCE', async () => {
    const spa = await oidc.discovery(issuer, 'spa', { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);
    const url = oidc.buildAuthorizationUrl(spa, { redirect_uri: SPA_CB, scope: 'openid', state: 'st', nonce: 'nn' });
    const res = await navigate(newBrowser(s), url.toString());
    const location = new URL(res.headers.get('location') ?? '', s.gatewayUrl);
    expect(location.toString().startsWith(SPA_CB)).toBe(true);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    const ok = await codeFor(spa, SPA_CB);
    const t = await oidc.authorizationCodeGrant(spa, ok.callback, ok.checks);
    expect(t.access_token).toBeTruthy();
  });
});

describe('errors (RFC 6749 / OIDC)', () => {
  test('an unregistered redirect URI is never redirected to', async () => {
    const req = await start(synapse, {}, 'https://evil.test/callback');
    const res = await navigate(newBrowser(s), req.url);
    const location = res.headers.get('location') ?? '';
    expect(location.startsWith('https://evil.test')).toBe(false);
    expect(new URL(location, s.gatewayUrl).searchParams.get('error')).toBe('invalid_redirect');
  });

  test('a wrong PKCE verifier is invalid_grant', async () => {
    const r = await codeFor(synapse);
    await expect(
      oidc.authorizationCodeGrant(synapse, r.callback, {
        pkceCodeVerifier: oidc.randomPKCECodeVerifier(),
        expectedState: r.state,
        expectedNonce: r.nonce,
      }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('a code used twice is invalid_grant', async () => {
    const r = await codeFor(synapse);
    const checks = r.checks;
    await oidc.authorizationCodeGrant(synapse, r.callback, checks);
    await expect(oidc.authorizationCodeGrant(synapse, r.callback, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('a wrong client secret is invalid_client (401 with a Basic challenge)', async () => {
    const r = await codeFor(synapse);
    const res = await fetch(String(synapse.serverMetadata().token_endpoint), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`synapse:${SYNAPSE_SECRET}x`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: r.callback.searchParams.get('code') ?? '',
        redirect_uri: SYNAPSE_CB,
        code_verifier: r.verifier,
      }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate') ?? '').toMatch(/^Basic/i);
    expect(await res.json()).toMatchObject({ error: 'invalid_client' });
  });

  test('client_secret_post is refused for a client registered for client_secret_basic', async () => {
    const post = await oidc.discovery(issuer, 'synapse', undefined, oidc.ClientSecretPost(SYNAPSE_SECRET), insecure);
    const r = await codeFor(synapse);
    await expect(oidc.authorizationCodeGrant(post, r.callback, r.checks)).rejects.toMatchObject({
      error: 'invalid_client',
    });
  });

  test('an expired code is invalid_grant (clock advanced past the code lifetime)', async () => {
    const r = await codeFor(synapse);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 61_000);
      await expect(oidc.authorizationCodeGrant(synapse, r.callback, r.checks)).rejects.toMatchObject({ error: 'invalid_grant' });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('hosted login page', () => {
  test('German by Accept-Language or lang, strict CSP, only the same-origin passkey script, links to sign-up and reset', async () => {
    const req = await start(synapse);
    const browser = newBrowser(s);
    const toLogin = await navigate(browser, req.url);
    const loginUrl = new URL(toLogin.headers.get('location') ?? '', s.gatewayUrl);
    expect(loginUrl.pathname).toBe('/auth/login');
    const de = await browser.fetch(loginUrl, { headers: { 'accept-language': 'de-DE,de;q=0.9,en;q=0.5' } });
    const html = await de.text();
    expect(html).toContain('<html lang="de">');
    expect(html).toContain('Bei Mana anmelden');
    // One same-origin script (passkey sign-in), no inline script and no handler attributes.
    expect(html.match(/<script[^>]*>/gi)).toEqual(['<script src="/auth/passkey.js" defer>']);
    expect(html).not.toMatch(/<script[^>]*>[^<]/i);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).toContain('https://app.mana.test/signup');
    expect(html).toContain('https://app.mana.test/forgot-password');
    const csp = de.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("form-action 'self' https://matrix.test");
    expect(csp).not.toContain('unsafe-inline');
    loginUrl.searchParams.set('lang', 'en');
    expect(await (await browser.fetch(loginUrl, { headers: { 'accept-language': 'de' } })).text()).toContain('Sign in to Mana');
    const css = await browser.fetch(`${s.gatewayUrl}/auth/style.css`);
    expect(css.headers.get('content-type')).toContain('text/css');
  });

  test('wrong password and unknown email answer the same; a missing or forged CSRF token is refused', async () => {
    const req = await start(synapse);
    const browser = newBrowser(s);
    const loginUrl = new URL((await navigate(browser, req.url)).headers.get('location') ?? '', s.gatewayUrl);
    const html = await (await browser.fetch(loginUrl)).text();
    const fields = { csrf: hiddenField(html, 'csrf'), oauth_query: hiddenField(html, 'oauth_query') };
    const origin = new URL(s.gatewayUrl).origin;
    const wrong = await postForm(
      browser,
      `${s.gatewayUrl}/auth/login`,
      { ...fields, email: user.email, password: 'not-the-password' },
      origin,
    );
    const unknown = await postForm(
      browser,
      `${s.gatewayUrl}/auth/login`,
      { ...fields, email: `nobody-${user.email}`, password: 'not-the-password' },
      origin,
    );
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(await wrong.text()).toContain('Invalid email or password.');
    expect(await unknown.text()).toContain('Invalid email or password.');
    const forged = await postForm(
      browser,
      `${s.gatewayUrl}/auth/login`,
      { ...fields, csrf: 'A'.repeat(43), email: user.email, password: user.password },
      origin,
    );
    expect(forged.status).toBe(403);
    expect(forged.headers.get('location')).toBeNull();
    const crossSite = await postForm(
      browser,
      `${s.gatewayUrl}/auth/login`,
      { ...fields, email: user.email, password: user.password },
      'https://evil.test',
    );
    expect(crossSite.status).toBe(403);
    const tampered = new URLSearchParams(fields.oauth_query);
    tampered.set('redirect_uri', 'https://evil.test/cb');
    const bad = await postForm(
      browser,
      `${s.gatewayUrl}/auth/login`,
      { ...fields, oauth_query: tampered.toString(), email: user.email, password: user.password },
      origin,
    );
    expect(bad.headers.get('location') ?? '').not.toContain('evil.test');
  });
});

describe('Matrix link in the GDPR view and erasure', () => {
  test('two emails with the same local part get distinct Matrix ids (alice, alice2)', async () => {
    const local = `dup-${randomUUID().slice(0, 8)}`;
    const ids: string[] = [];
    for (const domain of ['a.test', 'b.test']) {
      const u = await registerUser(s, `${local}@${domain}`);
      const r = await start(synapse);
      const { url } = await authorizeViaLoginForm(s, newBrowser(s), r.url, u, SYNAPSE_CB);
      const t = await oidc.authorizationCodeGrant(synapse, url, r.checks);
      const name = t.claims()?.preferred_username;
      ids.push(typeof name === 'string' ? name : JSON.stringify(name));
    }
    expect(ids).toEqual([local, `${local}2`]);
  });

  test('the internal data view lists the Matrix id; erasure deletes it with the user', async () => {
    const other = await registerUser(s);
    const r = await start(synapse);
    const { url } = await authorizeViaLoginForm(s, newBrowser(s), r.url, other, SYNAPSE_CB);
    // Synapse redeems the code at once; the Matrix id is recorded when its id_token is issued.
    await oidc.authorizationCodeGrant(synapse, url, r.checks);
    const data = await call<{ matrix?: { userId: string } }>(`${s.gatewayUrl}/api/v1/internal/users/${other.userId}/data`, {
      headers: { 'x-service-key': s.env.MANA_SERVICE_KEY ?? '' },
    });
    expect(data.status).toBe(200);
    expect(data.body.matrix?.userId).toBe(MATRIX_TEMPLATE.replace('{localpart}', other.email.split('@')[0] ?? ''));

    const bus = createBus({
      url: s.env.AMQP_URL ?? '',
      exchange: s.env.AMQP_EXCHANGE ?? '',
      queuePrefix: `${s.env.AMQP_QUEUE_PREFIX}-gdpr`,
      logger: createLogger('oidc-test', 'silent'),
    });
    await bus.start();
    try {
      await bus.waitForConnection(10_000);
      const requestId = randomUUID();
      await bus.publish(createEvent('user.erasure.requested.v1', { requestId, userId: other.userId }));
      const done = await s.waitForEvent('user.erasure.completed.v1', (e) => (e.data as { requestId?: string }).requestId === requestId);
      expect((done.data as { deleted: Record<string, number> }).deleted.matrixLinks).toBe(1);
    } finally {
      await bus.close();
    }
    const rows = await s.sql.query('select 1 from auth.matrix_links where user_id = $1', [other.userId]);
    expect(rows.rowCount).toBe(0);
  });
});
