import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEvent } from '@mana/shared';
import * as oidc from 'openid-client';
import { startStack, type Stack } from '../helpers/stack';
import { call, cookieFetch } from '../helpers/http';
import { strongPassword } from '../helpers/users';
import {
  SYNAPSE_SECRET,
  WEBAPP_SECRET,
  authorizationRequest,
  authorizeViaLoginForm,
  navigate,
  newBrowser,
  oidcEnv,
  registerUser,
} from './oidc-helpers';

const SYNAPSE_CB = 'https://matrix.test/_synapse/client/oidc/callback';
const WEBAPP_CB = 'https://webapp.test/callback';
const SPA_CB = 'http://127.0.0.1:9/spa/callback';
const insecure = { execute: [oidc.allowInsecureRequests] };

let s: Stack;
let origin: string;
let synapse: oidc.Configuration;
let webapp: oidc.Configuration;

beforeAll(async () => {
  s = await startStack({ env: oidcEnv({ synapse: SYNAPSE_CB, webapp: WEBAPP_CB, spa: SPA_CB }) });
  origin = new URL(s.gatewayUrl).origin;
  const issuer = new URL(s.gatewayUrl);
  synapse = await oidc.discovery(issuer, 'synapse', undefined, oidc.ClientSecretBasic(SYNAPSE_SECRET), insecure);
  webapp = await oidc.discovery(issuer, 'webapp', undefined, oidc.ClientSecretPost(WEBAPP_SECRET), insecure);
}, 60_000);

afterAll(async () => {
  await s?.close();
});

/** A browser signed in with Better Auth's cookie (no OAuth flow). */
async function signedInBrowser(user: { email: string; password: string }) {
  const jar = cookieFetch(origin);
  const res = await call(`${s.gatewayUrl}/api/auth/sign-in/email`, {
    body: { email: user.email, password: user.password },
    fetch: jar.fetch,
  });
  expect(res.status).toBe(200);
  return jar;
}

describe('client management is configuration only', () => {
  test('every client-management endpoint answers 404 to a signed-in user, and no client is created', async () => {
    const jar = await signedInBrowser(await registerUser(s));
    const before = (await s.sql.query('select count(*)::int as n from auth.oauth_client')).rows[0] as { n: number };
    const client = { client_name: 'Phish', redirect_uris: ['https://evil.test/cb'], token_endpoint_auth_method: 'client_secret_basic' };
    const attempts: Array<[string, string, unknown]> = [
      ['POST', '/oauth2/create-client', client],
      ['POST', '/oauth2/register', client],
      ['POST', '/admin/oauth2/create-client', client],
      ['GET', '/oauth2/get-client?client_id=synapse', undefined],
      ['GET', '/oauth2/get-clients', undefined],
      ['POST', '/oauth2/update-client', { client_id: 'synapse', update: { redirect_uris: ['https://evil.test/cb'] } }],
      ['POST', '/admin/oauth2/update-client', { client_id: 'synapse', update: { redirect_uris: ['https://evil.test/cb'] } }],
      ['POST', '/oauth2/client/rotate-secret', { client_id: 'synapse' }],
      ['POST', '/oauth2/delete-client', { client_id: 'synapse' }],
    ];
    for (const [method, path, body] of attempts) {
      const res = await call(`${s.gatewayUrl}/api/auth${path}`, { method, body, fetch: jar.fetch });
      expect([403, 404], `${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`).toContain(res.status);
    }
    const after = (await s.sql.query('select count(*)::int as n from auth.oauth_client')).rows[0] as { n: number };
    expect(after.n).toBe(before.n);
    // The configured clients are untouched and still work.
    const rows = await s.sql.query<{ client_id: string; redirect_uris: string[] }>(
      "select client_id, redirect_uris from auth.oauth_client where client_id = 'synapse'",
    );
    expect(rows.rows).toEqual([{ client_id: 'synapse', redirect_uris: [SYNAPSE_CB] }]);
  });
});

describe('PKCE (S256) for every client', () => {
  test.each([
    ['synapse (client_secret_basic)', () => synapse, SYNAPSE_CB],
    ['webapp (client_secret_post)', () => webapp, WEBAPP_CB],
  ])('%s: an authorization request without a code challenge is refused, even with a nonce', async (_name, config, redirectUri) => {
    const url = oidc.buildAuthorizationUrl(config(), {
      redirect_uri: redirectUri,
      scope: 'openid profile',
      state: 'st',
      nonce: 'a-nonce-value',
    });
    const res = await navigate(newBrowser(s), url.toString());
    const location = new URL(res.headers.get('location') ?? '', s.gatewayUrl);
    expect(location.toString().startsWith(redirectUri)).toBe(true);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('code')).toBeNull();
  });

  test('a plain code challenge is refused; S256 works for a confidential client', async () => {
    const plain = oidc.buildAuthorizationUrl(synapse, {
      redirect_uri: SYNAPSE_CB,
      scope: 'openid',
      state: 'st',
      nonce: 'nn',
      code_challenge: 'x'.repeat(43),
      code_challenge_method: 'plain',
    });
    const res = await navigate(newBrowser(s), plain.toString());
    expect(new URL(res.headers.get('location') ?? '', s.gatewayUrl).searchParams.get('error')).toBe('invalid_request');
    const user = await registerUser(s);
    const req = await authorizationRequest(synapse, SYNAPSE_CB, 'openid');
    const { url } = await authorizeViaLoginForm(s, newBrowser(s), req.url, user, SYNAPSE_CB);
    expect((await oidc.authorizationCodeGrant(synapse, url, req.checks)).access_token).toBeTruthy();
  });
});

describe('OIDC refresh tokens die with their session', () => {
  /** A user signed in to Synapse through the hosted login (an SSO browser session), refresh already rotated once. */
  async function synapseSession() {
    const user = await registerUser(s);
    const browser = newBrowser(s);
    const req = await authorizationRequest(synapse, SYNAPSE_CB, 'openid profile email offline_access');
    const { url } = await authorizeViaLoginForm(s, browser, req.url, user, SYNAPSE_CB);
    const first = await oidc.authorizationCodeGrant(synapse, url, req.checks);
    // Still alive while the session lives (and a rotated token carries the session too).
    const rotated = await oidc.refreshTokenGrant(synapse, first.refresh_token ?? '');
    expect(rotated.refresh_token).toBeTruthy();
    return { user, browser, refreshToken: rotated.refresh_token ?? '' };
  }

  const refreshFails = (refreshToken: string) =>
    expect(oidc.refreshTokenGrant(synapse, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });

  test('logout of the browser session', async () => {
    const { browser, refreshToken } = await synapseSession();
    const out = await call(`${s.gatewayUrl}/api/auth/sign-out`, { body: {}, fetch: browser.fetch });
    expect(out.status).toBe(200);
    await refreshFails(refreshToken);
  });

  test('log out everywhere (DELETE /api/v1/auth/sessions from another session)', async () => {
    const { user, refreshToken } = await synapseSession();
    const login = await call<{ accessToken: string }>(`${s.gatewayUrl}/api/v1/auth/login`, {
      body: { email: user.email, password: user.password },
    });
    expect(login.status).toBe(200);
    const res = await call<{ revoked: number }>(`${s.gatewayUrl}/api/v1/auth/sessions`, {
      method: 'DELETE',
      token: login.body.accessToken,
    });
    expect(res.status).toBe(200);
    expect(res.body.revoked).toBeGreaterThanOrEqual(1);
    await refreshFails(refreshToken);
  });

  test('a password change in another session', async () => {
    const { user, refreshToken } = await synapseSession();
    const jar = await signedInBrowser(user);
    const res = await call(`${s.gatewayUrl}/api/auth/change-password`, {
      body: { currentPassword: user.password, newPassword: strongPassword() },
      fetch: jar.fetch,
    });
    expect(res.status).toBe(200);
    await refreshFails(refreshToken);
  });

  test('a password reset', async () => {
    const { user, refreshToken } = await synapseSession();
    const asked = await call(`${s.gatewayUrl}/api/auth/request-password-reset`, { body: { email: user.email, redirectTo: '/reset' } });
    expect(asked.status).toBe(200);
    const mail = await s.smtp.waitFor(user.email, (m) => m.text.includes('/reset-password/'));
    const token = /\/reset-password\/([^?\s]+)/.exec(mail.text)?.[1] ?? '';
    const reset = await call(`${s.gatewayUrl}/api/auth/reset-password`, { body: { newPassword: strongPassword(), token } });
    expect(reset.status).toBe(200);
    await refreshFails(refreshToken);
  });

  test('a ban', async () => {
    const { user, refreshToken } = await synapseSession();
    const res = await call(`${s.gatewayUrl}/api/v1/internal/users/${user.userId}/ban`, {
      body: { reason: 'spam' },
      headers: { 'x-service-key': s.env.MANA_SERVICE_KEY ?? '' },
    });
    expect(res.status).toBe(200);
    await refreshFails(refreshToken);
  });

  test('erasure', async () => {
    const { user, refreshToken } = await synapseSession();
    const requestId = randomUUID();
    await s.publish(createEvent('user.erasure.requested.v1', { requestId, userId: user.userId }));
    await s.waitForEvent('user.erasure.completed.v1', (e) => (e.data as { requestId?: string; service?: string }).requestId === requestId);
    await refreshFails(refreshToken);
  });

  test('another session of the same user ending leaves the token alive', async () => {
    const { user, refreshToken } = await synapseSession();
    const login = await call<{ accessToken: string }>(`${s.gatewayUrl}/api/v1/auth/login`, {
      body: { email: user.email, password: user.password },
    });
    expect((await call(`${s.gatewayUrl}/api/v1/auth/logout`, { body: {}, token: login.body.accessToken })).status).toBe(200);
    expect((await oidc.refreshTokenGrant(synapse, refreshToken)).access_token).toBeTruthy();
  });
});
